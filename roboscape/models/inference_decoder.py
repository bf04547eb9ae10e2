"""The tokenizer's decoder for rollouts, made faster for inference: optionally compiled by
TorchInductor with its weights frozen into the graph (oneDNN packs them once instead of at every
call), optionally under bf16 autocast.

On a CPU, the decoder is most of a world-model env step (the WM-env benchmark prints its share);
both options only change how the same weights turn tokens into pixels, never which tokens the world
model generates. bf16 rounds activations to 8 mantissa bits, so frames move by a fraction of a grey
level, RMS (the benchmark prints the PSNR of fast against exact frames); it is fast only where
the hardware has bf16 arithmetic (CPUs with AVX512-BF16 or AMX, recent GPUs). Compiling needs a C++
compiler on a CPU; the first call at each batch shape compiles (tens of seconds), later calls reuse
it. Frozen weights are constants of the compiled graph: build the decoder again after changing them.
"""

from __future__ import annotations

from typing import Literal

import torch

from roboscape.models.tokenizer import DecoderContext, Tokenizer

DecoderPrecision = Literal["fp32", "bf16"]


class InferenceDecoder:
    """``tokens (N, h, w) [, context] -> frames (N, 3, H, W)`` in float32, clamped to [-1, 1],
    like :meth:`Tokenizer.decode_tokens`."""

    def __init__(self, tokenizer: Tokenizer, precision: DecoderPrecision = "fp32", compile: bool = False):
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"decoder precision must be 'fp32' or 'bf16', got {precision!r}")
        self.tokenizer, self.precision = tokenizer.eval(), precision
        self.device_type = next(tokenizer.parameters()).device.type
        decoder = tokenizer.decoder
        self._decoder = torch.compile(decoder, dynamic=False, options={"freezing": True}) if compile else decoder

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, context: DecoderContext | None = None) -> torch.Tensor:
        codes = self.tokenizer.token_codes(tokens)
        with torch.autocast(self.device_type, torch.bfloat16, enabled=self.precision == "bf16"):
            frames = self._decoder(codes, context)
        return frames.float().clamp(-1, 1)
