"""The arithmetic a model computes in at inference: ``fp32``, ``bf16`` (autocast) or ``auto``.

One notion shared by everything that can run in bf16 -- the rollouts' decoder, the action world
model's forward pass, the general reward's perceptual trunk -- so that ``auto`` means the same
everywhere: bf16 where the hardware computes in it (CPUs with AVX512-BF16 or AMX, GPUs with bf16
arithmetic), fp32 elsewhere, where bf16 would be emulated and several times slower.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch

Precision = Literal["fp32", "bf16", "auto"]
PRECISIONS = ("fp32", "bf16", "auto")


def check_precision(precision: str, what: str) -> None:
    """Raise a ``ValueError`` naming ``what`` (e.g. "decoder") unless ``precision`` is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise ValueError(f"{what} precision must be one of {PRECISIONS}, got {precision!r}")


def warn_if_emulated(precision: Precision, device_type: str, what: str) -> None:
    """Warn where ``precision`` asks for bf16 on hardware that would emulate it: a model computed
    so is several times slower than in fp32, which ``auto`` would have picked."""
    if resolve_precision(precision, device_type) == "bf16" and not has_fast_bf16(device_type):
        hardware = (
            "this CPU has neither AVX512-BF16 nor AMX"
            if device_type == "cpu"
            else f"this {device_type} device has no bf16 arithmetic"
        )
        warnings.warn(
            f"{hardware}: a bf16 {what} is emulated there, several times slower than in fp32; "
            "precision 'auto' picks the faster",
            stacklevel=3,
        )


def resolve_precision(precision: Precision, device_type: str) -> Precision:
    """``precision`` made concrete for ``device_type``: ``auto`` is bf16 where the hardware computes
    in it, fp32 elsewhere; fp32 and bf16 stay as they are."""
    if precision != "auto":
        return precision
    return "bf16" if has_fast_bf16(device_type) else "fp32"


def has_fast_bf16(device_type: str) -> bool:
    """Whether ``device_type``'s hardware computes in bf16 (rather than emulating it)."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def precision_autocast(precision: Precision, device_type: str) -> torch.autocast:
    """The context a model computes ``precision`` in on ``device_type``: bf16 autocast where it
    resolves to bf16, a disabled autocast (fp32, as without one) where it resolves to fp32."""
    return torch.autocast(device_type, torch.bfloat16, enabled=resolve_precision(precision, device_type) == "bf16")
