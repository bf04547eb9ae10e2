"""The perceptual distance (shift-tolerant LPIPS, offline): a distance, with clear errors and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from roboscape.models.perceptual import BlurPooledConv, PerceptualDistance, fast_trunk


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


@pytest.mark.parametrize("size", [(128, 128), (64, 64), (33, 47), (100, 129)])
def test_the_fast_trunk_is_the_trunk(perceptual, size):
    """Every layer's activations within float rounding, borders included, at even, odd and
    non-square sizes (where the blur's reflections fold differently)."""
    fast = fast_trunk(perceptual.model)
    assert isinstance(fast.slice1[0], BlurPooledConv) and len(fast.slice1) == 2
    assert not isinstance(perceptual.model.net.slice1[0], BlurPooledConv)  # a copy; the original stays
    torch.manual_seed(0)
    x = torch.rand(2, 3, *size) * 2 - 1
    with torch.no_grad():
        for ours, theirs in zip(fast(x), perceptual.model.net(x), strict=True):
            assert ours.shape == theirs.shape
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
        layout = x.contiguous(memory_format=torch.channels_last)
        assert fast.slice1(layout).is_contiguous(memory_format=torch.channels_last)


def test_blur_pooled_conv_takes_only_what_it_computes(perceptual):
    down = perceptual.model.net.slice1[1]
    with pytest.raises(ValueError, match="stride-1"):
        BlurPooledConv(nn.Conv2d(3, 8, 3, stride=2, padding=1), down)
    with pytest.raises(ValueError, match="padding"):
        BlurPooledConv(nn.Conv2d(3, 8, 3, padding=(1, 2)), down)
    with pytest.raises(ValueError, match="too small"):
        BlurPooledConv(nn.Conv2d(3, 8, 11, padding=2), down)(torch.zeros(1, 3, 8, 8))
