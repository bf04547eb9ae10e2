"""The tokenizer's decoder for rollouts, made faster for inference, with the same weights.

Three options (:class:`DecoderOptions`), each changing only how the decoder turns tokens into
pixels, never which tokens the world model generates:

- ``fuse_upsampling``: each nearest-neighbour 2x upsampling followed by a 3x3 convolution becomes
  one stride-2 transposed 4x4 convolution computing the same function (each output pixel of the
  pair sees a 2x2 neighbourhood of input pixels, with the 3x3 kernel's rows and columns summed
  accordingly): 2.25x fewer multiply-adds in the decoder's two most expensive layers, frames equal
  up to float rounding;
- ``compile``: TorchInductor with the weights frozen into the graph (oneDNN packs them once
  instead of at every call); a C++ compiler is needed on a CPU, and the first call at each batch
  shape compiles (tens of seconds);
- ``precision="bf16"``: bf16 autocast. Activations are rounded to 8 mantissa bits, so frames move
  by a fraction of a grey level, RMS (the benchmarks print the PSNR of fast against exact frames);
  fast only where the hardware has bf16 arithmetic (CPUs with AVX512-BF16 or AMX, recent GPUs).
  Elsewhere it is emulated: on an AVX2-only CPU a bf16 decode is 7-33x slower than an fp32 one
  (README, Benchmarks), so asking for it there warns. ``precision="auto"`` is bf16 where the
  hardware has it and fp32 elsewhere;
- ``frames_per_call``: decode a batch a few frames at a time. A decoder's activations at full
  resolution are megabytes per frame, so a large batch works out of memory rather than cache; on
  2-core CPUs, 2 (fp32) to 4 (bf16, half the bytes) frames per call decode faster per frame than 16
  (README, Benchmarks). Each frame's pixels are computed as in one call, up to float rounding.

On a CPU the decoder is most of a world-model env step (the WM-env benchmark prints its share).
Fused and compiled decoders hold their own copy of the weights: build the decoder again after
changing the tokenizer's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
from torch import nn

from roboscape.models.precision import (
    PRECISIONS,
    Precision,
    check_precision,
    precision_autocast,
    resolve_precision,
    warn_if_emulated,
)
from roboscape.models.tokenizer import Decoder, DecoderContext, Tokenizer

# Rows (and columns) of the transposed 4x4 kernel as sums of the 3x3 kernel's: output row 2m
# takes input row m - 1 through kernel row 3 (3x3 row 0) and row m through kernel row 1 (rows
# 1 + 2); output row 2m + 1 takes row m through kernel row 2 (rows 0 + 1) and row m + 1 through
# kernel row 0 (row 2).
_TRANSPOSED_ROWS = torch.tensor([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=torch.float64)


@dataclass(frozen=True)
class DecoderOptions:
    precision: Precision = "fp32"
    compile: bool = False
    fuse_upsampling: bool = False
    frames_per_call: int | None = None  # None: the whole batch in one call

    def __post_init__(self):
        check_precision(self.precision, "decoder")
        if self.frames_per_call is not None and self.frames_per_call < 1:
            raise ValueError(f"frames_per_call must be >= 1 (or None: all at once), got {self.frames_per_call}")

    def resolved(self, device_type: str) -> DecoderOptions:
        """These options with ``auto`` precision made concrete for ``device_type``."""
        return replace(self, precision=resolve_precision(self.precision, device_type))

    @property
    def name(self) -> str:
        """E.g. ``fp32`` (exact), ``bf16``, ``compiled-fp32``, ``fused-compiled-auto``, ``fused-fp32-by2``."""
        by = [f"by{self.frames_per_call}"] if self.frames_per_call else []
        return "-".join(["fused"] * self.fuse_upsampling + ["compiled"] * self.compile + [self.precision] + by)

    @classmethod
    def from_name(cls, name: str) -> DecoderOptions:
        parts = name.split("-")
        frames_per_call = None
        if len(parts) > 1 and parts[-1].startswith("by") and parts[-1][2:].isdigit():
            frames_per_call = int(parts.pop()[2:])
        *flags, precision = parts
        if flags not in ([], ["fused"], ["compiled"], ["fused", "compiled"]) or precision not in PRECISIONS:
            raise ValueError(f"a decoder is named [fused-][compiled-](fp32|bf16|auto)[-byK], got {name!r}")
        return cls(
            precision,
            compile="compiled" in flags,
            fuse_upsampling="fused" in flags,  # type: ignore[arg-type]
            frames_per_call=frames_per_call,
        )


def upsampling_as_transposed_conv(upsample: nn.Upsample, conv: nn.Conv2d) -> nn.ConvTranspose2d:
    """``conv(upsample(x))`` for a nearest 2x ``upsample`` and a 3x3, stride-1, padding-1 ``conv``,
    as one transposed convolution of ``x``."""
    if (
        upsample.mode != "nearest"
        or upsample.scale_factor not in (2, 2.0, (2, 2), (2.0, 2.0))
        or upsample.size is not None
    ):
        raise ValueError(f"expected a nearest 2x upsampling, got {upsample}")
    if (
        conv.kernel_size != (3, 3)
        or conv.stride != (1, 1)
        or conv.padding != (1, 1)
        or conv.dilation != (1, 1)
        or conv.groups != 1
    ):
        raise ValueError(f"expected a 3x3 convolution with stride 1 and padding 1, got {conv}")
    fused = nn.ConvTranspose2d(conv.in_channels, conv.out_channels, 4, stride=2, padding=1, bias=conv.bias is not None)
    fused = fused.to(conv.weight.device, conv.weight.dtype)
    rows = _TRANSPOSED_ROWS.to(conv.weight.device)
    with torch.no_grad():
        # conv weight (out, in, 3, 3) -> transposed weight (in, out, 4, 4)
        fused.weight.copy_(torch.einsum("ka,lb,oiab->iokl", rows, rows, conv.weight.double()))
        if conv.bias is not None:
            fused.bias.copy_(conv.bias)
    return fused


def fuse_decoder_upsampling(decoder: Decoder) -> Decoder:
    """A copy of ``decoder`` with every (nearest 2x upsampling, 3x3 convolution) pair fused."""
    fused = copy.deepcopy(decoder)
    layers, blocks = list(fused.blocks), []
    i = 0
    while i < len(layers):
        if isinstance(layers[i], nn.Upsample):
            blocks.append(upsampling_as_transposed_conv(layers[i], layers[i + 1]))
            i += 2
        else:
            blocks.append(layers[i])
            i += 1
    fused.blocks = nn.Sequential(*blocks)
    return fused


class InferenceDecoder:
    """``tokens (N, h, w) [, context] -> frames (N, 3, H, W)`` in float32, clamped to [-1, 1],
    like :meth:`Tokenizer.decode_tokens`, with the speed-ups of ``options``."""

    def __init__(self, tokenizer: Tokenizer, options: DecoderOptions | None = None):
        self.device_type = next(tokenizer.parameters()).device.type
        options = (options or DecoderOptions()).resolved(self.device_type)
        warn_if_emulated(options.precision, self.device_type, "decoder")
        self.tokenizer, self.options = tokenizer.eval(), options
        decoder = tokenizer.decoder
        if options.fuse_upsampling:
            decoder = fuse_decoder_upsampling(decoder)
        elif options.compile:
            decoder = copy.deepcopy(decoder)  # frozen into the compiled graph: the tokenizer's stay its own
        self._decoder = (
            torch.compile(decoder, dynamic=False, options={"freezing": True}) if options.compile else decoder
        )

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, context: DecoderContext | None = None) -> torch.Tensor:
        codes = self.tokenizer.token_codes(tokens)
        step = self.options.frames_per_call or max(len(codes), 1)
        chunks = []
        with precision_autocast(self.options.precision, self.device_type):
            for i in range(0, len(codes), step):
                chunk_context = None if context is None else (context[0][i : i + step], context[1][i : i + step])
                chunks.append(self._decoder(codes[i : i + step], chunk_context))
        return torch.cat(chunks).float().clamp(-1, 1)
