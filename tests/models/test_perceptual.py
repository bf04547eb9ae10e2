"""The perceptual distance (shift-tolerant LPIPS, offline): a distance, with clear errors and gradients."""

from __future__ import annotations

import pytest
import torch

from roboscape.models.perceptual import PerceptualDistance


@pytest.fixture(scope="module")
def perceptual():
    return PerceptualDistance("stlpips")


def test_perceptual_distance_is_a_distance(perceptual):
    torch.manual_seed(0)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    near = (x + 0.05 * torch.randn_like(x)).clamp(-1, 1)
    far = torch.rand(3, 3, 32, 32) * 2 - 1
    assert torch.allclose(perceptual(x, x), torch.zeros(3), atol=1e-6)
    assert (perceptual(x, near) < perceptual(x, far)).all()
    assert perceptual(x, far).shape == (3,)


def test_perceptual_distance_rejects_bad_inputs(perceptual):
    x = torch.zeros(1, 3, 32, 32)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        perceptual(x + 255, x)  # uint8-range frames: the classic bug
    with pytest.raises(ValueError, match="NaN"):
        perceptual(x * float("nan"), x)
    with pytest.raises(ValueError, match="shape"):
        perceptual(x, torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="at least 32x32"):
        perceptual(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="unknown perceptual backend"):
        PerceptualDistance("ssim")


def test_perceptual_distance_gives_gradients(perceptual):
    x = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_()
    perceptual(x, torch.zeros(1, 3, 32, 32)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in perceptual.parameters())
