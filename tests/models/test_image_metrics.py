"""PSNR, SSIM and codebook utilisation."""

from __future__ import annotations

import pytest
import torch

from roboscape.models.image_metrics import codebook_utilisation, psnr, ssim


def test_image_metrics():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    assert (psnr(x, x) > 90).all()
    y = (x + 0.2).clamp(-1, 1)
    mse01 = (((x - y) / 2) ** 2).flatten(1).mean(1)
    assert torch.allclose(psnr(x, y), -10 * torch.log10(mse01))
    noisy = (x + 0.5 * torch.randn_like(x)).clamp(-1, 1)
    assert (ssim(x, noisy) < ssim(x, y)).all() and (ssim(x, noisy) < 0.9).all()
    assert codebook_utilisation(torch.tensor([[0, 1], [1, 3]]), 8) == 3 / 8
    with pytest.raises(ValueError, match="shape"):
        psnr(x, x[:1])
