"""The RoboScape-R world model (paper section 3.1): an autoregressive spatial-temporal
transformer over tokenizer tokens, conditioned on a control signal by cross-attention, with a
done head.

One architecture serves both models; only the control differs:

- action WM: the 7-DoF end-effector delta + gripper of each step, through an MLP action encoder
  into ``control_tokens`` tokens per step; frame t's tokens attend to the action of step t;
- text WM: the instruction's per-token text-encoder states, projected; every frame attends to them.

Block (pre-norm on every sub-layer)::

    x = x + SpatialSelfAttn(LN(x))        within a frame, bidirectional
    x = x + TemporalSelfAttn(LN(x))       across frames at one spatial position, causal, RoPE
    x = x + CrossAttn(LN(x), control)     to the control embeddings
    x = x + MLP(LN(x))

Outputs, at every input frame t: logits of frame t+1's tokens and the probability that frame t+1
is done (an MLP on frame t's pooled features) -- Eq. 1, ``x_t, d_t = WM(x_{0:t-1}, c)``: a frame
and its done signal are predicted together, so an environment step returns both at once. Temporal
attention is causal sliding-window attention over ``window`` frames with rotary position
embeddings, so a KV cache of the last ``window`` frames gives what the uncached model gives (up to
floating-point rounding), however long the rollout. The cache (:class:`KVRing`) is preallocated
and written in place, one frame per step, instead of growing and being trimmed.

Token target (``token_target``): ``codes`` predicts each next token as one softmax over the
codebook; ``bits`` predicts the D = log2(codebook_size) sign bits of the LFQ latent s_t one
binary distribution each (the paper's s_t in R^{H'xW'xD} for the action WM, Eq. 2 summed over
bits) and embeds the input tokens from their bits. Most tokens that change between frames flip
a single bit: a softmax over codes scores that as wrong as any other code, the bit target as
all bits but one right (and its head is D wide, not 2**D; docs/design.md has the measured share).
Either way ``token_nll`` is nats per token (for bits, of the factorised code distribution), so
the two compare directly.

Frame skip (``frame_skip``): one step of the model spans k recorded frames (control steps); its
action is their summed end-effector delta (:func:`roboscape.data.token_windows.skip_actions`).

Action dropout (``action_dropout``, action WM): in training, each sequence's actions are replaced
by a learned null action with this probability, so that the same network also predicts the next
frame without knowing the action. A rollout can then guide by the action (classifier-free
guidance, :class:`roboscape.models.rollout.Rollout`'s ``guidance``): the next frame's logits
``u + s * (c - u)`` from the conditional ``c`` and the unconditional ``u``, which at ``s > 1``
amplifies what the action changes against what any action would -- a lever for actions whose
effect the greedy per-position mode averages away (docs/controllability-history.md). Guidance can
also be confined to the positions where that happens (:func:`hidden_motion`), leaving the positions
the conditional model already moves, or surely keeps, as it decodes them.

Text dropout (``text_dropout``, text WM): the same for the instruction -- each training sequence is
given a learned null instruction instead of its own with this probability, so that a rollout can
guide by the instruction, amplifying what the task changes against what any task would (the
imagined goals' lever, :class:`roboscape.rl.goals.GoalConfig`'s ``guidance``).

Episode clock (``episode_clock``): each frame's world-model step since its episode began, as a
learned embedding added to all its tokens (steps at or past ``episode_clock - 1`` share the last
one), so that a model whose window holds the last few frames still knows how far into the
episode it is. For the text WM, which imagines a whole episode from its first frame (Eq. 6), a
window of 6 frames cannot tell the reach at the start from the same motion later, nor when the
task is usually done (docs/rl-history.md). Initialised to zero, so a warm start begins as the
model it starts from; 0 (the default) tells the model nothing.

Copy prior (``copy_prior``): most of a frame's tokens persist into the next one (the static
scene), so each position's logits get a learned bonus for the token it
holds now, ``logits[n, x_t[n]] += c`` with c initialised to ``log(codebook_size)``. At
initialisation the model then predicts "nothing moves" with probability ~1/2 per token, and the
transformer learns the changes instead of first learning to copy. Off by default: it lowers the
held-out token cross-entropy, but a changing token's probability spreads over many codes, so
greedy rollouts keep every token and ignore the actions (docs/world-model-history.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from roboscape.models.pretrained import Pretrained
from roboscape.utils.config import JsonConfig

CONTROLS = ("action", "text")
TOKEN_TARGETS = ("codes", "bits")


@dataclass
class WorldModelConfig(JsonConfig):
    codebook_size: int = 4096
    tokens_hw: int = 8  # tokens per frame side: a frame is tokens_hw**2 tokens
    window: int = 6  # frames of temporal context
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    control: str = "action"
    action_dim: int = 7
    control_tokens: int = 4  # action WM: tokens the action encoder makes per step
    text_dim: int = 384  # text WM: width of the text encoder's states
    copy_prior: bool = False  # learned logit bonus for keeping each position's current token
    token_target: str = "bits"  # bits: one binary distribution per LFQ bit; codes: a softmax over the codebook
    frame_skip: int = 4  # recorded frames (control steps) per world-model step; its action is their summed delta
    action_dropout: float = 0.0  # action WM: share of training sequences given the null action instead of theirs
    text_dropout: float = 0.0  # text WM: share of training sequences given the null instruction instead of theirs
    episode_clock: int = 0  # episode steps told apart by a learned embedding (0: none; see the module docstring)
    # Action WM: statistics of the training actions (per dimension). Actions are standardised
    # with mean/std before the encoder; the rollout clips actions to [low, high], the trained range.
    action_mean: list[float] | None = None
    action_std: list[float] | None = None
    action_low: list[float] | None = None
    action_high: list[float] | None = None

    def __post_init__(self):
        if self.control not in CONTROLS:
            raise ValueError(f"unknown control {self.control!r}; choose one of {CONTROLS}")
        if self.frame_skip < 1:
            raise ValueError("frame_skip must be >= 1")
        if self.token_target not in TOKEN_TARGETS:
            raise ValueError(f"unknown token_target {self.token_target!r}; choose one of {TOKEN_TARGETS}")
        if self.token_target == "bits":
            if self.codebook_size < 2 or self.codebook_size & (self.codebook_size - 1):
                raise ValueError(
                    f"token_target 'bits' needs a power-of-two (LFQ) codebook, got {self.codebook_size} codes"
                )
            if self.copy_prior:
                raise ValueError("copy_prior works on code logits: it needs token_target 'codes'")
        for name, control in (("action_dropout", "action"), ("text_dropout", "text")):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
            if value and self.control != control:
                raise ValueError(f"{name} is for a {control} world model")
        if self.episode_clock < 0:
            raise ValueError(f"episode_clock must be >= 0, got {self.episode_clock}")
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise ValueError(f"dim {self.dim} must split into {self.heads} heads of even width")
        for name in ("action_mean", "action_std", "action_low", "action_high"):
            value = getattr(self, name)
            if value is not None and len(value) != self.action_dim:
                raise ValueError(f"{name} has {len(value)} entries, expected action_dim = {self.action_dim}")
        if self.action_std is not None and min(self.action_std) <= 0:
            raise ValueError("action_std must be positive")

    @property
    def tokens_per_frame(self) -> int:
        return self.tokens_hw**2

    @property
    def code_bits(self) -> int:
        return self.codebook_size.bit_length() - 1

    @property
    def logits_per_token(self) -> int:
        return self.code_bits if self.token_target == "bits" else self.codebook_size


def token_bits(tokens: torch.Tensor, n_bits: int) -> torch.Tensor:
    """Token ids (...,) -> their bits (..., n_bits) as booleans, least significant first."""
    weights = 2 ** torch.arange(n_bits, device=tokens.device)
    return (tokens[..., None].long() & weights) != 0


def bits_to_tokens(bits: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`token_bits`."""
    weights = 2 ** torch.arange(bits.shape[-1], device=bits.device)
    return (bits.long() * weights).sum(-1)


def token_nll(logits: torch.Tensor, target: torch.Tensor, token_target: str) -> torch.Tensor:
    """Negative log-likelihood in nats of each target token (same shape as ``target``)."""
    if token_target == "bits":
        labels = token_bits(target, logits.shape[-1]).to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").sum(-1)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1).long(), reduction="none").view(
        target.shape
    )


def hidden_motion(
    logits: torch.Tensor, previous: torch.Tensor, token_target: str, threshold: float = 0.5
) -> torch.Tensor:
    """Where greedy decoding keeps the ``previous`` token (N, L) although the model gives keeping it
    probability below ``threshold`` (N, L booleans); at one half, a position likely to change whose
    destination is spread over many codes, so that no single new code (or, under ``bits``, no single
    bit) outweighs the old one. ``threshold`` 0: nowhere."""
    if threshold <= 0:
        return torch.zeros(previous.shape, dtype=torch.bool, device=previous.device)
    if token_target == "bits":
        greedy_keeps = ((logits > 0) == token_bits(previous, logits.shape[-1])).all(-1)
    else:
        greedy_keeps = logits.argmax(-1) == previous.long()
    return greedy_keeps & (token_nll(logits, previous, token_target) > -math.log(threshold))


def keep_or_change(logits: torch.Tensor, previous: torch.Tensor, token_target: str, threshold: float) -> torch.Tensor:
    """Token ids from logits, deciding first whether each position keeps its ``previous`` token:
    it keeps it where greedy decoding would and the model gives it probability >= ``threshold``,
    else takes the most likely *other* token. Greedy decoding can keep a token the model believes
    in less than even (every bit of a ``bits`` target may favour the old token while their product
    does not: :func:`hidden_motion`); there this rule moves, to the old token with its least certain
    bit flipped. ``threshold`` 0 is greedy decoding; 1/2 moves wherever keeping is less likely than not."""
    moves = hidden_motion(logits, previous, token_target, threshold)
    if token_target == "bits":
        flip = F.one_hot(logits.abs().argmin(-1), logits.shape[-1]).bool()
        other = bits_to_tokens(token_bits(previous, logits.shape[-1]) ^ flip)
        return torch.where(moves, other, bits_to_tokens(logits > 0))
    other = logits.scatter(-1, previous.long()[..., None], -torch.inf).argmax(-1)
    return torch.where(moves, other, logits.argmax(-1))


def predict_tokens(
    logits: torch.Tensor,
    token_target: str,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
    previous: torch.Tensor | None = None,
    keep_threshold: float = 0.0,
) -> torch.Tensor:
    """Token ids from logits: the most likely (``temperature`` 0; per bit for ``bits``), or with
    ``previous`` tokens and a ``keep_threshold`` above 0, :func:`keep_or_change`'s, or sampled."""
    if temperature <= 0 and keep_threshold > 0:
        if previous is None:
            raise ValueError("keep-or-change decoding needs the previous tokens")
        return keep_or_change(logits, previous, token_target, keep_threshold)
    if token_target == "bits":
        if temperature <= 0:
            return bits_to_tokens(logits > 0)
        return bits_to_tokens(torch.bernoulli(torch.sigmoid(logits / temperature), generator=generator).bool())
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
    return flat.view(probs.shape[:-1])


def rotary(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding of (..., T, head_dim) at integer ``positions`` (T,)."""
    half = x.shape[-1] // 2
    freqs = 1.0 / (10000 ** (torch.arange(half, device=x.device, dtype=torch.float32) / half))
    angles = positions.float()[:, None] * freqs[None]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class KVRing:
    """The keys and values of one temporal attention layer over the last ``window`` frames of a
    rollout, in buffers allocated at the first frame and written in place: frame t goes to slot
    t mod window, over the frame that has left the window. Keys carry their rotary positions
    already, and attention does not depend on the order of its keys (up to rounding), so the ring
    is never reordered -- a step writes one frame instead of copying the whole cache.

    Each sequence (a spatial position of one environment) has its own record of which slots hold
    its frames, so that :meth:`restart` starts some sequences afresh (a new episode of one
    environment) while the others go on: a restarted sequence attends only to the frames written
    after the restart. Rotary attention depends on positions only through their differences, so its
    frames need no renumbering."""

    def __init__(self, window: int):
        self.window = window
        self.frames = 0
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.valid: torch.Tensor | None = None  # (S, window): which slots hold each sequence's frames

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Add one frame's keys and values (S, heads, 1, head_dim); returns those of the frames
        in the window, this one included (S, heads, <= window, head_dim), and which of them each
        sequence may attend to (S, <= window)."""
        if k.shape[2] != 1:
            raise ValueError(f"a KV cache takes one frame at a time, got {k.shape[2]}")
        if self.k is None or self.v is None:
            self.k = k.new_empty(*k.shape[:2], self.window, k.shape[3])
            self.v = v.new_empty(*v.shape[:2], self.window, v.shape[3])
            self.valid = torch.zeros(k.shape[0], self.window, dtype=torch.bool, device=k.device)
        slot = self.frames % self.window
        self.k[:, :, slot : slot + 1] = k
        self.v[:, :, slot : slot + 1] = v
        self.valid[:, slot] = True
        self.frames += 1
        filled = min(self.frames, self.window)
        return self.k[:, :, :filled], self.v[:, :, :filled], self.valid[:, :filled]

    def restart(self, rows: torch.Tensor) -> None:
        """Forget every cached frame of the sequences ``rows`` (their next frame is a first one)."""
        if self.valid is not None:
            self.valid[rows] = False


# the dtypes in which a one-query attention (a rollout step's temporal attention) is computed by
# one_query_attention rather than F.scaled_dot_product_attention: where that is faster on a CPU
# (bench/temporal_attention.py); fp32 keeps torch's kernel, as fast there and bit for bit as before
ONE_QUERY_DTYPES: tuple[torch.dtype, ...] = (torch.bfloat16, torch.float16)


def one_query_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Scaled dot-product attention of one query (..., 1, d) over keys and values (..., T, d), with an
    optional boolean ``mask`` (broadcastable to (..., 1, T); True: attend), written elementwise.
    This is a rollout step's temporal attention: each spatial position's new frame over the few
    frames of its window, thousands of tiny problems, on which the CPU kernel of
    ``F.scaled_dot_product_attention`` in bf16 spends its time per problem rather than on
    arithmetic (bench/temporal_attention.py). The same values up to rounding (tested)."""
    scores = (q * k).sum(-1, keepdim=True) * q.shape[-1] ** -0.5  # (..., T, 1)
    if mask is not None:
        scores = scores.masked_fill(~mask.transpose(-1, -2), float("-inf"))
    return (scores.softmax(-2) * v).sum(-2, keepdim=True)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float, kv_dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.heads, -1).transpose(1, 2)

    def forward(
        self, x, context=None, causal=False, positions=None, cache: KVRing | None = None, key_mask=None, window=None
    ):
        """``cache``: the keys and values of earlier frames (temporal attention, one new frame per
        call), updated in place with this one's, whose own mask of cached frames replaces
        ``key_mask``; ``window``: causal attention reaches back at most ``window - 1`` steps.
        Returns the attention's output."""
        context = x if context is None else context
        q = self._split(self.q(x))
        k, v = (self._split(t) for t in self.kv(context).chunk(2, dim=-1))
        if positions is not None:
            q_pos = positions[-q.shape[2] :]
            q = rotary(q, q_pos)
            k = rotary(k, q_pos)
        if cache is not None:
            k, v, key_mask = cache.append(k, v)
        mask = None
        if causal and q.shape[2] > 1:
            tq, tk = q.shape[2], k.shape[2]
            mask = torch.ones(tq, tk, dtype=torch.bool, device=x.device).tril(diagonal=tk - tq)
            if window is not None:
                mask &= ~torch.ones(tq, tk, dtype=torch.bool, device=x.device).tril(diagonal=tk - tq - window)
        if key_mask is not None:
            km = key_mask[:, None, None, :]
            mask = km if mask is None else mask & km
        dropout = self.dropout if self.training else 0.0
        if q.shape[2] == 1 and q.dtype in ONE_QUERY_DTYPES and not dropout:  # a bf16 rollout step's temporal attention
            out = one_query_attention(q, k, v, mask)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        out = out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
        return self.out(out)


class STBlock(nn.Module):
    def __init__(self, cfg: WorldModelConfig):
        super().__init__()
        d = cfg.dim
        self.norm_s, self.norm_t, self.norm_c, self.norm_m = (nn.LayerNorm(d) for _ in range(4))
        self.spatial = Attention(d, cfg.heads, cfg.dropout)
        self.temporal = Attention(d, cfg.heads, cfg.dropout)
        self.cross = Attention(d, cfg.heads, cfg.dropout)
        hidden = int(d * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(hidden, d))
        self.window = cfg.window

    def forward(self, x, control, control_mask, positions, cache=None):
        """x: (B, T, N, D); control: (B, T, C, D) per-frame control tokens; ``cache``: this block's
        temporal keys and values (a rollout step, T = 1)."""
        B, T, N, D = x.shape
        h = x.reshape(B * T, N, D)
        h = h + self.spatial(self.norm_s(h))
        h = h.view(B, T, N, D).transpose(1, 2).reshape(B * N, T, D)
        h = h + self.temporal(self.norm_t(h), causal=True, positions=positions, cache=cache, window=self.window)
        h = h.view(B, N, T, D).transpose(1, 2).reshape(B * T, N, D)
        C = control.shape[2]
        mask = None if control_mask is None else control_mask.reshape(B * T, C)
        h = h + self.cross(self.norm_c(h), context=control.reshape(B * T, C, D), key_mask=mask)
        h = h + self.mlp(self.norm_m(h))
        return h.view(B, T, N, D)


class WorldModelOutput(NamedTuple):
    logits: torch.Tensor  # (B, T, N, logits_per_token): tokens of frame t+1, from frames <= t
    done: torch.Tensor  # (B, T): probability that frame t+1 is done, from frames <= t
    features: torch.Tensor  # (B, T, D): frame t's final hidden states, pooled: what the done head reads


class WorldModel(nn.Module, Pretrained):
    KIND = "world_model"
    CONFIG = WorldModelConfig

    def __init__(self, cfg: WorldModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.token_emb = (
            nn.Linear(cfg.code_bits, d) if cfg.token_target == "bits" else nn.Embedding(cfg.codebook_size, d)
        )
        self.spatial_pos = nn.Parameter(torch.randn(cfg.tokens_per_frame, d) * 0.02)
        if cfg.control == "action":
            mean = torch.zeros(cfg.action_dim) if cfg.action_mean is None else torch.tensor(cfg.action_mean)
            std = torch.ones(cfg.action_dim) if cfg.action_std is None else torch.tensor(cfg.action_std)
            self.register_buffer("action_mean", mean.float(), persistent=False)
            self.register_buffer("action_std", std.float(), persistent=False)
            self.control_encoder = nn.Sequential(
                nn.Linear(cfg.action_dim, d),
                nn.SiLU(),
                nn.Linear(d, d),
                nn.SiLU(),
                nn.Linear(d, cfg.control_tokens * d),
            )
            # the control tokens of "no action given" (action dropout, guidance)
            self.null_control = nn.Parameter(torch.zeros(cfg.control_tokens, d)) if cfg.action_dropout else None
        else:
            # the control token of "no instruction given" (text dropout, guidance), at every text position
            self.null_control = nn.Parameter(torch.zeros(1, d)) if cfg.text_dropout else None
            self.control_encoder = nn.Sequential(nn.LayerNorm(cfg.text_dim), nn.Linear(cfg.text_dim, d))
        self.blocks = nn.ModuleList(STBlock(cfg) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.logits_per_token)
        self.copy_logit = nn.Parameter(torch.tensor(math.log(cfg.codebook_size))) if cfg.copy_prior else None
        self.done_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))
        self.clock_emb = None
        if cfg.episode_clock:
            self.clock_emb = nn.Embedding(cfg.episode_clock, d)
            nn.init.zeros_(self.clock_emb.weight)

    # ------------------------------------------------------------------ inputs
    def _check_tokens(self, tokens: torch.Tensor) -> None:
        n = self.cfg.tokens_per_frame
        if tokens.dim() != 3 or tokens.shape[2] != n:
            raise ValueError(f"expected tokens (B, T, {n}), got {tuple(tokens.shape)}")
        if tokens.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"tokens must be integers, got {tokens.dtype}")
        if tokens.min() < 0 or tokens.max() >= self.cfg.codebook_size:
            raise ValueError(f"token ids must be in [0, {self.cfg.codebook_size})")

    @property
    def guidable(self) -> bool:
        """Whether the model also predicts without its control (trained with action or text dropout)."""
        return self.null_control is not None

    def encode_control(self, control: torch.Tensor, T: int, unconditional: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, action_dim) actions or (B, L, text_dim) text states -> (B, T, C, D);
        ``unconditional`` (B,) bool: the sequences given the null action or instruction instead of theirs."""
        cfg = self.cfg
        if not torch.isfinite(control).all():
            raise ValueError("control has NaN or infinite values")
        if cfg.control == "action":
            if control.dim() != 3 or control.shape[1:] != (T, cfg.action_dim):
                raise ValueError(f"expected actions (B, {T}, {cfg.action_dim}), got {tuple(control.shape)}")
            control = (control - self.action_mean) / self.action_std
            tokens = self.control_encoder(control).view(control.shape[0], T, cfg.control_tokens, cfg.dim)
        else:
            if control.dim() != 3 or control.shape[2] != cfg.text_dim:
                raise ValueError(f"expected text states (B, L, {cfg.text_dim}), got {tuple(control.shape)}")
            tokens = self.control_encoder(control)[:, None].expand(-1, T, -1, -1)
        if unconditional is None:
            return tokens
        if self.null_control is None:
            raise ValueError(f"this world model was trained without {cfg.control} dropout: no null {cfg.control}")
        return torch.where(unconditional[:, None, None, None], self.null_control.to(tokens.dtype), tokens)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        tokens: torch.Tensor,
        control: torch.Tensor,
        control_mask: torch.Tensor | None = None,
        clock: torch.Tensor | None = None,
    ) -> WorldModelOutput:
        """Teacher-forced pass over frames 0..T-1. Temporal attention is causal and reaches back
        ``window - 1`` frames (sliding-window attention), exactly what a KV-cached rollout sees.
        ``clock`` (B, T) ints: each frame's step in its episode (needed by a model with an
        ``episode_clock``, ignored by one without)."""
        self._check_tokens(tokens)
        B, T, _ = tokens.shape
        dropped = None
        share = self.cfg.action_dropout if self.cfg.control == "action" else self.cfg.text_dropout
        if self.training and share:
            dropped = torch.rand(B, device=tokens.device) < share
        ctrl = self.encode_control(control, T, dropped)
        mask = None if control_mask is None else control_mask[:, None].expand(-1, T, -1)
        x = self._embed(tokens, clock)
        positions = torch.arange(T, device=tokens.device)
        for block in self.blocks:
            x = block(x, ctrl, mask, positions)
        return self._heads(x, tokens)

    def _embed(self, tokens: torch.Tensor, clock: torch.Tensor | None) -> torch.Tensor:
        if self.cfg.token_target == "bits":
            x = self.token_emb(token_bits(tokens, self.cfg.code_bits).float() * 2 - 1) + self.spatial_pos
        else:
            x = self.token_emb(tokens) + self.spatial_pos
        if self.clock_emb is None:
            return x
        if clock is None:
            raise ValueError("this world model is told each frame's step in its episode (episode_clock): pass clock")
        if clock.shape != tokens.shape[:2]:
            raise ValueError(f"expected clock {tuple(tokens.shape[:2])}, got {tuple(clock.shape)}")
        if clock.min() < 0:
            raise ValueError("episode steps (clock) must be >= 0")
        return x + self.clock_emb(clock.long().clamp(max=self.cfg.episode_clock - 1))[:, :, None]

    def _heads(self, x: torch.Tensor, tokens: torch.Tensor) -> WorldModelOutput:
        h = self.norm_out(x)
        features = h.mean(dim=2)
        done = torch.sigmoid(self.done_head(features)).squeeze(-1)
        logits = self.head(h)
        if self.copy_logit is not None:
            bonus = self.copy_logit.to(logits.dtype).expand(*tokens.shape, 1)
            logits = logits.scatter_add(-1, tokens[..., None].long(), bonus)
        return WorldModelOutput(logits, done, features)

    def step(
        self,
        tokens_t: torch.Tensor,
        control_t: torch.Tensor,
        cache: list[KVRing] | None,
        control_mask: torch.Tensor | None = None,
        unconditional: torch.Tensor | None = None,
        clock_t: torch.Tensor | None = None,
    ) -> tuple[WorldModelOutput, list[KVRing]]:
        """One frame with a KV cache of earlier frames: ``tokens_t`` (B, N), ``control_t``
        (B, action_dim) or (B, L, text_dim); ``cache``: None at the first frame, then what the
        previous step returned (it is updated in place, and its frame count is this frame's
        position). ``unconditional`` (B,) bool: rows given the null control (their cached frames
        must be such rows' too). ``clock_t`` (B,): each row's step in its episode (see :meth:`forward`).
        Returns the outputs for this frame (T = 1) and the cache including it."""
        self._check_tokens(tokens_t[:, None])
        action = self.cfg.control == "action"
        ctrl = self.encode_control(control_t[:, None] if action else control_t, 1, unconditional)
        mask = None if control_mask is None else control_mask[:, None]
        x = self._embed(tokens_t[:, None], None if clock_t is None else clock_t[:, None])
        if cache is None:
            cache = [KVRing(self.cfg.window) for _ in self.blocks]
        position = torch.tensor([cache[0].frames], device=tokens_t.device)
        for block, layer_cache in zip(self.blocks, cache, strict=True):
            x = block(x, ctrl, mask, position, cache=layer_cache)
        return self._heads(x, tokens_t[:, None]), cache


def world_model_loss(
    out: WorldModelOutput,
    tokens: torch.Tensor,
    done: torch.Tensor,
    token_target: str,
    changed_token_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Eqs. 2-4: cross-entropy of frame t+1's tokens and RMSE of frame t+1's done signal, both
    predicted from frames <= t. ``done``: (B, T) labels of the input frames.

    ``changed_token_weight``: the weight, in the loss's cross-entropy, of a token that differs from
    the same position's token in frame t (the rest weigh 1; a weighted mean). Where the data holds
    more kept frames than moving ones for an action (an arm pushed against its reach), keeping every
    token is the likeliest answer, and greedy rollouts take it; a weight above 1 pays the moving
    tokens more. ``token_ce`` is the unweighted mean either way, comparable between runs."""
    nll = token_nll(out.logits[:, :-1], tokens[:, 1:], token_target)
    ce = nll.mean()
    weighted = ce
    if changed_token_weight != 1.0:
        weights = torch.where(tokens[:, 1:] != tokens[:, :-1], changed_token_weight, 1.0).to(nll.dtype)
        weighted = (nll * weights).sum() / weights.sum()
    rmse = torch.sqrt(F.mse_loss(out.done[:, :-1], done[:, 1:].float()) + 1e-12)
    return {"loss": weighted + rmse, "token_ce": ce, "done_rmse": rmse}
