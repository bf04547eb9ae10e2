"""Perceptual distance: one pluggable function used by losses, metrics and the dense reward.

Backends (both real, both expecting images in [-1, 1]):

- ``lpips``: LPIPS (Zhang et al., 2018), the paper's choice. Its AlexNet/VGG trunk comes from
  torchvision's model zoo, i.e. it needs a network the first time (then torch's cache).
- ``stlpips``: shift-tolerant LPIPS (Ghildyal & Liu, 2022) from ``stlpips-pytorch``, whose
  wheel ships the full weights: the offline default.
"""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

BACKENDS = ("stlpips", "lpips")
MIN_SIZE = 32


class PerceptualDistance(nn.Module):
    """``d(x, y)``: per-image perceptual distance, shape (B,), for images (B, 3, H, W) in [-1, 1].

    Frozen (no parameters train); differentiable with respect to the inputs."""

    def __init__(self, backend: str = "stlpips", net: str = "alex"):
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"unknown perceptual backend {backend!r}; choose one of {BACKENDS}")
        self.backend = backend
        with contextlib.redirect_stdout(io.StringIO()):  # both packages print set-up banners
            if backend == "stlpips":
                from stlpips_pytorch import stlpips

                self.model = stlpips.LPIPS(net=net, variant="shift_tolerant")
            else:
                import lpips

                try:
                    self.model = lpips.LPIPS(net=net)
                except Exception as err:  # noqa: BLE001 - torchvision's download error types vary
                    raise RuntimeError(
                        "the 'lpips' backend loads its trunk from torchvision's model zoo, which needs a "
                        "network connection once; use backend 'stlpips' offline"
                    ) from err
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> PerceptualDistance:
        super().train(mode)
        self.model.eval()  # dropout in the linear heads must stay off
        return self

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                f"expected two (B, 3, H, W) images of one shape, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        if min(x.shape[-2:]) < MIN_SIZE:
            raise ValueError(
                f"images must be at least {MIN_SIZE}x{MIN_SIZE} for the AlexNet/VGG trunk, got {tuple(x.shape[-2:])}"
            )
        for name, t in (("x", x), ("y", y)):
            if not torch.isfinite(t).all():
                raise ValueError(f"{name} has NaN or infinite values")
            lo, hi = float(t.detach().min()), float(t.detach().max())
            if lo < -1.01 or hi > 1.01:
                raise ValueError(
                    f"{name} must be in [-1, 1] (got [{lo:.3f}, {hi:.3f}]); map uint8 frames with x / 127.5 - 1"
                )
        return self.model(x.float(), y.float()).flatten()
