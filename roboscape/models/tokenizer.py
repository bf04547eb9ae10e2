"""A MAGVIT-2-style per-frame image tokenizer: residual conv encoder/decoder around a
lookup-free quantizer (LFQ, with its entropy loss), FSQ selectable as a fallback.

Frames (B, 3, H, W) in [-1, 1] -> latents (B, D, H/f, W/f) -> integer tokens (B, H/f, W/f) in
``[0, codebook_size)`` -> frames. ``f`` is ``downsample_factor``. Following MAGVIT-2, the
encoder ends in a non-affine GroupNorm before the quantizer (it keeps LFQ's codebook in use on
small datasets).

With ``decoder_context`` (stage two only; tokens are unchanged), the decoder also sees a real
context frame -- in a rollout, the real frame it started from -- as iVideoGPT's decoder does: the
context's codes and how far the frame's codes are from them (per latent channel) join the frame's
codes at the lowest resolution, its pixels join the features at full resolution, and a per-pixel
gate chooses between the context's pixels and the decoded ones.
Where the scene has not changed the decoder can keep the real pixels instead of redrawing them
from the codes; where it has, the frame's tokens must say what is there now.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from vector_quantize_pytorch import FSQ, LFQ

from roboscape.models.pretrained import Pretrained
from roboscape.utils.config import JsonConfig

QUANTIZERS = ("lfq", "fsq")
# What a decoder with ``decoder_context`` is given of its context frames: (frames (B, 3, H, W), their codes).
DecoderContext = tuple[torch.Tensor, torch.Tensor]


@dataclass
class TokenizerConfig(JsonConfig):
    image_size: int = 64
    downsample_factor: int = 8
    base_channels: int = 32
    max_channel_mult: int = 4
    num_res_blocks: int = 1
    quantizer: str = "lfq"
    codebook_bits: int = 12  # LFQ: 2**bits codes, one bit per latent channel
    fsq_levels: tuple[int, ...] = field(default_factory=lambda: (8, 5, 5, 5))  # FSQ: prod(levels) codes
    entropy_loss_weight: float = 0.1
    commitment_loss_weight: float = 0.25
    diversity_gamma: float = 1.0
    decoder_context: bool = False  # the decoder also sees a real context frame (see the module doc)
    # Channels of the decoder's last (full-resolution) level; None: base_channels, as the encoder's
    # first. A narrower stage-two decoder decodes rollouts faster from the same tokens.
    decoder_channels: int | None = None

    def __post_init__(self):
        self.fsq_levels = tuple(self.fsq_levels)
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"unknown quantizer {self.quantizer!r}; choose one of {QUANTIZERS}")
        f = self.downsample_factor
        if f < 1 or f & (f - 1):
            raise ValueError(f"downsample_factor must be a power of two, got {f}")
        if self.image_size % f:
            raise ValueError(f"image_size {self.image_size} is not divisible by downsample_factor {f}")
        if self.decoder_channels is not None and self.decoder_channels < 1:
            raise ValueError(f"decoder_channels must be positive (or None: base_channels), got {self.decoder_channels}")

    @property
    def channel_mults(self) -> tuple[int, ...]:
        levels = int(math.log2(self.downsample_factor)) + 1
        return tuple(min(2**i, self.max_channel_mult) for i in range(levels))

    @property
    def decoder_width(self) -> int:
        """Channels of the decoder's full-resolution level (``decoder_channels`` or ``base_channels``)."""
        return self.base_channels if self.decoder_channels is None else self.decoder_channels

    @property
    def latent_dim(self) -> int:
        return self.codebook_bits if self.quantizer == "lfq" else len(self.fsq_levels)

    @property
    def codebook_size(self) -> int:
        return 2**self.codebook_bits if self.quantizer == "lfq" else math.prod(self.fsq_levels)

    @property
    def tokens_hw(self) -> int:
        return self.image_size // self.downsample_factor


def _groups(channels: int) -> int:
    return math.gcd(32, channels)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Encoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        chans = [cfg.base_channels * m for m in cfg.channel_mults]
        self.conv_in = nn.Conv2d(3, chans[0], 3, padding=1)
        blocks: list[nn.Module] = []
        c = chans[0]
        for i, c_out in enumerate(chans):
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResBlock(c, c_out))
                c = c_out
            if i < len(chans) - 1:
                blocks.append(nn.Conv2d(c, c, 4, stride=2, padding=1))
        blocks += [ResBlock(c, c), ResBlock(c, c)]
        self.blocks = nn.Sequential(*blocks)
        self.norm_out = nn.GroupNorm(_groups(c), c)
        self.conv_out = nn.Conv2d(c, cfg.latent_dim, 1)
        # Non-affine normalisation of the latents right before the quantizer.
        self.pre_quant_norm = nn.GroupNorm(1, cfg.latent_dim, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.conv_in(x))
        return self.pre_quant_norm(self.conv_out(F.silu(self.norm_out(h))))


class Decoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        chans = [cfg.decoder_width * m for m in cfg.channel_mults][::-1]
        c = chans[0]
        self.conv_in = nn.Conv2d(cfg.latent_dim, c, 3, padding=1)
        self.context = cfg.decoder_context
        if self.context:
            self.context_codes_in = nn.Conv2d(cfg.latent_dim, c, 3, padding=1)
            # Whether a code equals the context's is not a linear function of the two: given
            # directly, it tells the gate where the scene is unchanged.
            self.context_change_in = nn.Conv2d(cfg.latent_dim, c, 3, padding=1)
            self.context_pixels_in = nn.Conv2d(3, chans[-1], 3, padding=1)
            self.keep_context_out = nn.Conv2d(chans[-1], 1, 3, padding=1)
        blocks: list[nn.Module] = [ResBlock(c, c), ResBlock(c, c)]
        for i, c_out in enumerate(chans):
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResBlock(c, c_out))
                c = c_out
            if i < len(chans) - 1:
                blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)]
        self.blocks = nn.Sequential(*blocks)
        self.norm_out = nn.GroupNorm(_groups(c), c)
        self.conv_out = nn.Conv2d(c, 3, 3, padding=1)
        if self.context:
            # Zero context inputs and a closed gate (sigmoid(-4) = 0.018): a fresh context decoder
            # built on per-frame decoder weights starts out decoding (almost) as they do.
            for layer in (self.context_codes_in, self.context_change_in, self.context_pixels_in, self.keep_context_out):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
            nn.init.constant_(self.keep_context_out.bias, -4.0)

    def forward(self, z: torch.Tensor, context: DecoderContext | None = None) -> torch.Tensor:
        """``z``: codes (B, D, h, w); ``context`` is required exactly when the decoder was built
        with ``decoder_context``."""
        if self.context != (context is not None):
            raise ValueError("this decoder " + ("needs a context frame" if self.context else "takes no context frame"))
        h = self.conv_in(z)
        if context is None:
            return self.conv_out(F.silu(self.norm_out(self.blocks(h))))
        frames, codes = context
        h = h + self.context_codes_in(codes) + self.context_change_in((z - codes).abs())
        h = self.blocks(h) + self.context_pixels_in(frames)
        h = F.silu(self.norm_out(h))
        keep = torch.sigmoid(self.keep_context_out(h))
        return keep * frames + (1 - keep) * self.conv_out(h)


class TokenizerOutput(NamedTuple):
    reconstruction: torch.Tensor  # (B, 3, H, W), unclamped
    tokens: torch.Tensor  # (B, h, w) int64
    quantizer_loss: torch.Tensor  # LFQ entropy + commitment (0 for FSQ)


class Tokenizer(nn.Module, Pretrained):
    KIND = "tokenizer"
    CONFIG = TokenizerConfig

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        if cfg.quantizer == "lfq":
            self.quantizer = LFQ(
                dim=cfg.latent_dim,
                codebook_size=cfg.codebook_size,
                entropy_loss_weight=cfg.entropy_loss_weight,
                commitment_loss_weight=cfg.commitment_loss_weight,
                diversity_gamma=cfg.diversity_gamma,
            )
        else:
            self.quantizer = FSQ(levels=list(cfg.fsq_levels), dim=cfg.latent_dim, channel_first=True)

    def _check(self, x: torch.Tensor) -> None:
        s = self.cfg.image_size
        if x.dim() != 4 or x.shape[1:] != (3, s, s):
            raise ValueError(f"expected frames of shape (B, 3, {s}, {s}), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("frames contain NaN or infinite values")

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.cfg.quantizer == "lfq":
            q, idx, aux = self.quantizer(z)
            return q, idx.long(), aux
        q, idx = self.quantizer(z)
        return q, idx.long(), z.new_zeros(())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Frames in [-1, 1] -> tokens (B, h, w)."""
        self._check(x)
        return self.quantize(self.encoder(x))[1]

    def token_codes(self, tokens: torch.Tensor) -> torch.Tensor:
        """Integer tokens (B, h, w) -> the quantizer's codes (B, D, h, w), the decoder's input."""
        if tokens.dtype not in (torch.int32, torch.int64) or tokens.dim() != 3:
            raise ValueError(f"expected integer tokens of shape (B, h, w), got {tokens.dtype} {tuple(tokens.shape)}")
        if tokens.min() < 0 or tokens.max() >= self.cfg.codebook_size:
            raise ValueError(f"token ids must be in [0, {self.cfg.codebook_size})")
        return self.quantizer.indices_to_codes(tokens)

    def decoder_context(self, frames: torch.Tensor | None, tokens: torch.Tensor | None = None) -> DecoderContext | None:
        """What the decoder needs of the context frames (B, 3, H, W) -- None for a per-frame
        decoder; their tokens, if known, save encoding them again."""
        if not self.cfg.decoder_context:
            return None
        if frames is None:
            raise ValueError("this tokenizer's decoder needs the context frame (decoder_context)")
        self._check(frames)
        if tokens is None:
            return frames, self.quantize(self.encoder(frames))[0]
        if tokens.shape[0] != frames.shape[0]:
            raise ValueError(f"{frames.shape[0]} context frames but {tokens.shape[0]} context token maps")
        return frames, self.token_codes(tokens)

    def decode_tokens(self, tokens: torch.Tensor, context: DecoderContext | None = None) -> torch.Tensor:
        """Tokens (B, h, w) -> frames (B, 3, H, W), clamped to [-1, 1]. ``context``: from
        :meth:`decoder_context` (a decoder with ``decoder_context`` needs it)."""
        return self.decoder(self.token_codes(tokens), context).clamp(-1, 1)

    def forward(self, x: torch.Tensor, context_frames: torch.Tensor | None = None) -> TokenizerOutput:
        """Encode and decode ``x``; a decoder with ``decoder_context`` decodes it with the context
        frames ``context_frames`` (one per frame of ``x``)."""
        self._check(x)
        q, idx, aux = self.quantize(self.encoder(x))
        return TokenizerOutput(self.decoder(q, self.decoder_context(context_frames)), idx, aux)
