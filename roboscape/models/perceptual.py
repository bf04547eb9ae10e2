"""Perceptual distance: one pluggable function used by losses, metrics and the dense reward.

Backends (both real, both expecting images in [-1, 1]):

- ``lpips``: LPIPS (Zhang et al., 2018), the paper's choice. Its AlexNet/VGG trunk comes from
  torchvision's model zoo, i.e. it needs a network the first time (then torch's cache).
- ``stlpips``: shift-tolerant LPIPS (Ghildyal & Liu, 2022) from ``stlpips-pytorch``, whose
  wheel ships the full weights: the offline default.
"""

from __future__ import annotations

import contextlib
import copy
import io

import torch
import torch.nn.functional as F
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


class BlurPooledConv(nn.Module):
    """A stride-1 convolution followed by an anti-aliasing ``Downsample`` (reflection padding, a
    separable blur, a stride) -- the first layer of shift-tolerant LPIPS's AlexNet -- computed as
    one strided convolution whose kernel is the blurred kernel, so the full-resolution activations
    are never formed. Both steps are linear, so away from the borders the two are the same function;
    the output rows and columns whose blur reads reflected positions get their own small composite
    kernels, so the borders are exact too. Equal to ``down(conv(x))`` within float rounding, at any
    input size."""

    def __init__(self, conv: nn.Conv2d, down: nn.Module):
        super().__init__()
        p, stride, pads = conv.padding, down.stride, list(down.pad_sizes)
        if conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1 or conv.padding_mode != "zeros":
            raise ValueError("expected a plain stride-1 convolution with zero padding")
        if not isinstance(p, tuple) or p[0] != p[1] or len(set(pads)) != 1 or down.pad_off:
            raise ValueError("expected the same padding on every side")
        if not isinstance(down.pad, nn.ReflectionPad2d):
            raise ValueError("expected a reflection-padded blur")
        filt = down.filt[0, 0].double()
        taps = filt.sum(1)
        if not (torch.allclose(torch.outer(taps, taps), filt) and (down.filt == down.filt[:1]).all()):
            raise ValueError("expected one separable blur for every channel")
        self.conv = conv
        self.padding, self.reflect, self.stride = p[0], pads[0], stride
        self.taps = [float(t) for t in taps]
        along = down.filt.new_tensor(self.taps).expand(conv.out_channels, 1, 1, -1)  # depthwise, one per channel
        self.register_buffer("_along_w", along.clone(), persistent=False)
        self.register_buffer("_along_h", along.transpose(-1, -2).clone(), persistent=False)
        self._kernels: dict[tuple, tuple] = {}

    def _filters(self, n: int) -> list[tuple[int, list[float]]]:
        """For each output position along a side of ``n`` convolution outputs: the first position
        its blur reads and the weight of each position from there (reflections folded in)."""
        f, r, s = len(self.taps), self.reflect, self.stride
        if r >= n:
            raise ValueError(f"the image is too small for the blur's reflection padding ({n} <= {r})")
        rows = []
        for i in range((n + 2 * r - f) // s + 1):
            weights: dict[int, float] = {}
            for j, a in enumerate(self.taps):
                m = s * i + j - r
                m = -m if m < 0 else 2 * (n - 1) - m if m > n - 1 else m
                weights[m] = weights.get(m, 0.0) + a
            lo = min(weights)
            rows.append((lo, [weights.get(m, 0.0) for m in range(lo, max(weights) + 1)]))
        return rows

    def _compose(self, along_h: list[float], along_w: list[float]) -> torch.Tensor:
        """The convolution's kernel blurred by ``along_h`` x ``along_w``."""
        w = self.conv.weight.detach()
        k_h, k_w = w.shape[-2:]
        kernel = w.new_zeros(*w.shape[:2], len(along_h) + k_h - 1, len(along_w) + k_w - 1)
        for u, a in enumerate(along_h):
            for v, b in enumerate(along_w):
                if a and b:
                    kernel[..., u : u + k_h, v : v + k_w] += a * b * w
        return kernel.contiguous(memory_format=torch.channels_last)

    def _plan(self, h: int, w: int) -> tuple:
        """For input (h, w): each side's filters, interior range, and the composite kernels."""
        key = (h, w, self.conv.weight.device)
        if key not in self._kernels:
            k_h, k_w = self.conv.weight.shape[-2:]
            sides = []
            for n, k in ((h, k_h), (w, k_w)):
                filters = self._filters(n + 2 * self.padding - k + 1)
                s, r = self.stride, self.reflect
                inner = [i for i, (lo, wts) in enumerate(filters) if wts == self.taps and lo == s * i - r]
                sides.append((filters, range(inner[0], inner[-1] + 1) if inner else range(0)))
            (rows, inner_h), (cols, inner_w) = sides
            core = self._compose(self.taps, self.taps)
            by_row = {i: self._compose(rows[i][1], [1.0]) for i in range(len(rows)) if i not in inner_h}
            by_col = {i: self._compose([1.0], cols[i][1]) for i in range(len(cols)) if i not in inner_w}
            self._kernels[key] = (rows, inner_h, cols, inner_w, core, by_row, by_col)
        return self._kernels[key]

    def _blur(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """The reflection-padded strided blur along ``dim`` (-1 or -2) alone."""
        r = self.reflect
        if dim == -1:
            pad, taps, stride = (r, r, 0, 0), self._along_w, (1, self.stride)
        else:
            pad, taps, stride = (0, 0, r, r), self._along_h, (self.stride, 1)
        return F.conv2d(F.pad(x, pad, mode="reflect"), taps.to(x.dtype), stride=stride, groups=x.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, inner_h, cols, inner_w, core, by_row, by_col = self._plan(*x.shape[-2:])
        bias, s, r, p = self.conv.bias, self.stride, self.reflect, self.padding
        k_h, k_w = self.conv.weight.shape[-2:]
        xp = F.pad(x, (p, p, p, p))
        pieces = {}
        if len(inner_h) and len(inner_w):
            h0, w0 = s * inner_h[0] - r, s * inner_w[0] - r
            window = xp[..., h0 : s * inner_h[-1] - r + core.shape[-2], w0 : s * inner_w[-1] - r + core.shape[-1]]
            pieces["core"] = F.conv2d(window, core, bias, stride=s)
        for i, kernel in by_row.items():  # whole output rows, corners included
            lo, weights = rows[i]
            pieces[("row", i)] = self._blur(F.conv2d(xp[..., lo : lo + len(weights) + k_h - 1, :], kernel, bias), -1)
        for i, kernel in by_col.items():
            lo, weights = cols[i]
            pieces[("col", i)] = self._blur(F.conv2d(xp[..., lo : lo + len(weights) + k_w - 1], kernel, bias), -2)
        first = next(iter(pieces.values()))
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        out = first.new_empty(x.shape[0], first.shape[1], len(rows), len(cols)).contiguous(memory_format=layout)
        if "core" in pieces:
            out[..., inner_h.start : inner_h.stop, inner_w.start : inner_w.stop] = pieces["core"]
        for i in by_col:
            out[..., inner_h.start : inner_h.stop, i] = pieces[("col", i)][..., inner_h.start : inner_h.stop, 0]
        for i in by_row:
            out[..., i, :] = pieces[("row", i)][..., 0, :]
        return out


def fast_trunk(model: nn.Module) -> nn.Module:
    """A copy of an LPIPS model's trunk with shift-tolerant AlexNet's first layer as one
    :class:`BlurPooledConv` (the same function within float rounding, several times fewer
    multiply-adds in that layer); any other trunk is copied as it is."""
    from stlpips_pytorch.models_lpf.downsample import Downsample

    net = copy.deepcopy(model.net)
    first = getattr(net, "slice1", None)
    if first is not None and len(first) == 3 and isinstance(first[1], Downsample):
        keys = list(first._modules)
        fused = nn.Sequential()
        fused.add_module(keys[0], BlurPooledConv(first[0], first[1]))
        fused.add_module(keys[2], first[2])
        net.slice1 = fused
    return net
