"""Batched autoregressive rollouts of a world model: what the RL environment steps, and how the
text world model imagines goal frames (Eq. 6).

One forward pass per generated frame for all environments in the batch, with a KV cache over the
temporal window. Every step returns the new frames' tokens, their decoded images, their done
probabilities, the hidden states they were predicted from (a learned reward head reads them) and
the logits the tokens were decoded from (controllability reads how likely the model held each
token to stay: :func:`roboscape.eval.controllability.keep_probability`).
Observations and actions are validated: wrong shapes and NaN/infinite values are errors; actions
outside the trained range are clipped and counted. A tokenizer whose decoder takes a
context frame (``decoder_context``) decodes every step with the real frame the rollout started from.
The decoder can be made faster (:mod:`roboscape.models.inference_decoder`: fused upsampling,
compiled, bf16, a few frames per call): the tokens stay the same, the frames move by rounding.
A world model trained with action (text) dropout can be guided by its actions (instruction):
``guidance``, classifier-free guidance: each step runs the batch twice in one forward pass, with the
control and with the null control (each with its own cached frames), and decodes ``u + s * (c - u)``
of their logits; the done signal and the features are the conditional pass's. Guidance can be confined to
the positions where the conditional model hides motion (``guidance_positions="hidden"``).
The world model itself can run in bf16 (``precision``): unlike the decoder's, that may change which
tokens greedy decoding picks, so it is another environment, set for every rollout by one config key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from roboscape.models.inference_decoder import DecoderOptions, InferenceDecoder
from roboscape.models.precision import (
    Precision,
    check_precision,
    precision_autocast,
    resolve_precision,
    warn_if_emulated,
)
from roboscape.models.tokenizer import Tokenizer
from roboscape.models.world_model import WorldModel, hidden_motion, predict_tokens

GUIDANCE_POSITIONS = ("all", "hidden")


@dataclass
class RolloutStep:
    tokens: torch.Tensor  # (N, h, w) int64
    frames: torch.Tensor  # (N, 3, H, W) in [-1, 1]
    done: torch.Tensor  # (N,) probability that the new frame is done
    features: torch.Tensor  # (N, D) the world model's pooled hidden states that predicted the new frame
    logits: torch.Tensor  # (N, h*w, K) the world model's next-token logits the tokens were decoded from


class RolloutSettings(Protocol):
    """The rollout settings every stage's config carries (the eval, drift and controllability configs,
    the RL environment's), so that each builds its rollouts one way: :meth:`Rollout.from_settings`.
    A config may also carry ``seed``, ``keep_threshold`` and ``decoder`` (a
    :meth:`DecoderOptions.from_name` name, or ``exact``)."""

    temperature: float
    guidance: float
    guidance_positions: str
    precision: str


class Rollout:
    """Batched generation with one world model and the tokenizer that decodes its tokens."""

    def __init__(
        self,
        world_model: WorldModel,
        tokenizer: Tokenizer,
        action_low: float | torch.Tensor | None = None,
        action_high: float | torch.Tensor | None = None,
        temperature: float = 0.0,
        seed: int = 0,
        decoder: DecoderOptions | None = None,
        keep_threshold: float = 0.0,
        guidance: float = 1.0,
        guidance_positions: str = "all",
        precision: Precision = "fp32",
    ):
        """Actions are clipped to [action_low, action_high]: by default the range the world model
        was trained on (its config), or [-1, 1] (the controller's range) if it has none.
        ``decoder``: see :class:`DecoderOptions` (by default, it decodes exactly as
        :meth:`Tokenizer.decode_tokens`). ``keep_threshold`` at temperature 0: 0 decodes greedily (the
        most likely token; per bit for a ``bits`` target), above 0 by :func:`keep_or_change`.
        ``guidance``: the scale s of classifier-free guidance by the action or instruction (1: none,
        the conditional model alone; 0: the unconditional one); other than 1 it needs a world model
        trained with action or text dropout. ``guidance_positions``: ``all`` decodes every position
        from the guided logits; ``hidden`` only the positions where the conditional model hides
        motion (:func:`~roboscape.models.world_model.hidden_motion`: its greedy decoding keeps a
        token it gives less than even odds of staying), the others from the conditional logits
        alone, so that guidance pushes what greedy decoding would hold still and leaves what already
        moves as the model has it. ``precision``: the arithmetic of the world model's forward pass,
        ``fp32``, ``bf16`` (autocast: its matrix products in bf16, so greedy decoding may pick other
        tokens where two are nearly tied; warns where the hardware would emulate it) or ``auto`` (bf16
        where the hardware computes in it); the logits and everything after them stay fp32."""
        check_precision(precision, "world model")
        if guidance_positions not in GUIDANCE_POSITIONS:
            raise ValueError(f"guidance_positions must be one of {GUIDANCE_POSITIONS}, got {guidance_positions!r}")
        if not 0 <= keep_threshold < 1:
            raise ValueError(f"keep_threshold must be in [0, 1), got {keep_threshold}")
        if guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {guidance}")
        if guidance != 1 and not world_model.guidable:
            raise ValueError(
                f"guidance needs a world model trained with {world_model.cfg.control} dropout "
                f"(world_model.guidance.{world_model.cfg.control}_dropout)"
            )
        if (
            world_model.cfg.codebook_size != tokenizer.cfg.codebook_size
            or world_model.cfg.tokens_hw != tokenizer.cfg.tokens_hw
        ):
            raise ValueError("the world model and the tokenizer disagree on the codebook or the token grid")
        self.wm, self.tokenizer = world_model.eval(), tokenizer.eval()
        self.decode = InferenceDecoder(tokenizer, decoder)
        self.device = next(world_model.parameters()).device
        warn_if_emulated(precision, self.device.type, "world model")
        self.precision = resolve_precision(precision, self.device.type)
        cfg = world_model.cfg
        if action_low is None:
            action_low = -1.0 if cfg.action_low is None else cfg.action_low
        if action_high is None:
            action_high = 1.0 if cfg.action_high is None else cfg.action_high
        self.low = torch.as_tensor(action_low, dtype=torch.float32, device=self.device)
        self.high = torch.as_tensor(action_high, dtype=torch.float32, device=self.device)
        self.temperature, self.keep_threshold, self.guidance = temperature, keep_threshold, guidance
        self.guidance_positions = guidance_positions
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.clipped_actions = 0
        self._cache = None
        self._tokens: torch.Tensor | None = None
        self._clock: torch.Tensor | None = None  # (N,) each rollout's step in its episode
        self._text: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self._decoder_context = None

    @classmethod
    def from_settings(
        cls, world_model: WorldModel, tokenizer: Tokenizer, settings: RolloutSettings, **overrides: Any
    ) -> Rollout:
        """A rollout as a stage's config sets it: its temperature, guidance and precision, and its seed,
        decoder and keep threshold where it has them (else 0, exact decoding, greedy); ``overrides``
        replace any of the constructor's arguments (e.g. a per-environment ``seed``)."""
        optional = {"seed": 0, "keep_threshold": 0.0, "decoder": "exact"}
        required = ("temperature", "guidance", "guidance_positions", "precision")
        kwargs = {name: getattr(settings, name) for name in required}
        kwargs |= {name: getattr(settings, name, default) for name, default in optional.items()}
        kwargs["decoder"] = None if kwargs["decoder"] == "exact" else DecoderOptions.from_name(kwargs["decoder"])
        return cls(world_model, tokenizer, **(kwargs | overrides))

    @property
    def num_envs(self) -> int:
        return 0 if self._tokens is None else self._tokens.shape[0]

    # ------------------------------------------------------------------ validation
    def _check_frames(self, frames: torch.Tensor) -> None:
        s = self.tokenizer.cfg.image_size
        if frames.dim() != 4 or frames.shape[1:] != (3, s, s):
            raise ValueError(f"observations must be (N, 3, {s}, {s}) in [-1, 1], got {tuple(frames.shape)}")
        if not torch.isfinite(frames).all():
            raise ValueError("observations contain NaN or infinite values")

    def _check_actions(self, actions: torch.Tensor) -> torch.Tensor:
        n, d = self.num_envs, self.wm.cfg.action_dim
        if actions.shape != (n, d):
            raise ValueError(f"actions must be ({n}, {d}), got {tuple(actions.shape)}")
        if not torch.isfinite(actions).all():
            raise ValueError("actions contain NaN or infinite values")
        actions = actions.to(self.device, torch.float32)
        outside = (actions < self.low) | (actions > self.high)
        self.clipped_actions += int(outside.any(dim=-1).sum())
        return torch.maximum(torch.minimum(actions, self.high), self.low)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def reset(
        self,
        frames: torch.Tensor,
        text_states: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        clock: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Start N rollouts from real frames; returns their tokens (N, h, w). ``clock`` (N,): each
        frame's world-model step in its episode (default 0: the episode's first frame); each
        generated frame is one step later (what a world model with an ``episode_clock`` is told)."""
        self._check_frames(frames)
        if (self.wm.cfg.control == "text") != (text_states is not None):
            raise ValueError(
                f"a {self.wm.cfg.control!r} world model {'needs' if text_states is None else 'takes no'} text states"
            )
        frames = frames.to(self.device)
        tokens = self.tokenizer.encode(frames)
        context = self.tokenizer.decoder_context(frames, tokens)
        # its own copy: reset_envs replaces rows of it in place
        self._decoder_context = None if context is None else tuple(t.clone() for t in context)
        self._tokens = tokens.flatten(1)
        n = frames.shape[0]
        clock = torch.zeros(n) if clock is None else torch.as_tensor(clock)
        if clock.shape != (n,) or clock.min() < 0:
            raise ValueError(f"clock must be {n} episode steps >= 0, got {clock.tolist()}")
        self._clock = clock.to(self.device, torch.long, copy=True)
        self._text = (
            None
            if text_states is None
            else (text_states.to(self.device), None if text_mask is None else text_mask.to(self.device))
        )
        self._cache = None
        return tokens

    @torch.no_grad()
    def reset_envs(self, envs: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Start the rollouts ``envs`` (indices) afresh from real first frames (len(envs), 3, H, W)
        while the others go on: their tokens, decoder context, cached frames and episode clock are
        replaced, and nothing of the others changes. Returns their tokens (len(envs), h, w)."""
        if self._tokens is None:
            raise RuntimeError("call reset() before reset_envs()")
        envs = torch.as_tensor(envs, dtype=torch.long, device=self.device).flatten()
        if envs.numel() == 0:
            return torch.empty(0, dtype=torch.long)
        if envs.min() < 0 or envs.max() >= self.num_envs or envs.unique().numel() != envs.numel():
            raise ValueError(f"reset_envs takes distinct indices below {self.num_envs}, got {envs.tolist()}")
        self._check_frames(frames)
        if frames.shape[0] != envs.numel():
            raise ValueError(f"{envs.numel()} environments but {frames.shape[0]} frames")
        frames = frames.to(self.device)
        tokens = self.tokenizer.encode(frames)
        self._tokens[envs] = tokens.flatten(1)
        self._clock[envs] = 0
        context = self.tokenizer.decoder_context(frames, tokens)
        if context is not None:
            for mine, new in zip(self._decoder_context, context, strict=True):
                mine[envs] = new
        if self._cache is not None:
            n = self.wm.cfg.tokens_per_frame
            if self.guidance != 1:  # the unconditional pass's rows follow the conditional ones
                envs = torch.cat([envs, envs + self.num_envs])
            rows = (envs[:, None] * n + torch.arange(n, device=self.device)).flatten()
            for layer in self._cache:
                layer.restart(rows)
        return tokens

    @torch.no_grad()
    def step(self, actions: torch.Tensor | None = None) -> RolloutStep:
        """One frame for every environment: one forward pass of the world model for the batch."""
        if self._tokens is None:
            raise RuntimeError("call reset() before step()")
        if self.wm.cfg.control == "action":
            if actions is None:
                raise ValueError("an action world model needs actions")
            control, mask = self._check_actions(actions), None
        else:
            control, mask = self._text
        autocast = precision_autocast(self.precision, self.device.type)
        if self.guidance == 1:
            with autocast:
                out, self._cache = self.wm.step(
                    self._tokens, control, self._cache, control_mask=mask, clock_t=self._clock
                )
            logits = out.logits[:, 0].float()
        else:
            n = self.num_envs
            unconditional = torch.arange(2 * n, device=self.device) >= n
            with autocast:
                both, self._cache = self.wm.step(
                    self._tokens.repeat(2, 1),
                    torch.cat([control, control]),
                    self._cache,
                    control_mask=None if mask is None else torch.cat([mask, mask]),
                    unconditional=unconditional,
                    clock_t=self._clock.repeat(2),
                )
            cond, uncond = both.logits[:n, 0].float(), both.logits[n:, 0].float()
            logits = uncond + self.guidance * (cond - uncond)
            if self.guidance_positions == "hidden":
                hidden = hidden_motion(cond, self._tokens, self.wm.cfg.token_target)
                logits = torch.where(hidden[..., None], logits, cond)
            out = both._replace(done=both.done[:n], features=both.features[:n])
        self._tokens = predict_tokens(
            logits, self.wm.cfg.token_target, self.temperature, self.generator, self._tokens, self.keep_threshold
        )
        self._clock = self._clock + 1
        hw = self.wm.cfg.tokens_hw
        tokens = self._tokens.view(-1, hw, hw)
        frames = self.decode(tokens, self._decoder_context)
        return RolloutStep(tokens, frames, out.done[:, 0].float(), out.features[:, 0].float(), logits)

    @torch.no_grad()
    def imagine_goal(
        self,
        frames: torch.Tensor,
        text_states: torch.Tensor,
        text_mask: torch.Tensor | None = None,
        threshold: float = 0.5,
        max_steps: int = 100,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Eq. 6: generate until the done signal reaches ``threshold``; the goal is the first such
        frame (the last generated one if it never does). Returns (goal frames, steps taken, whether
        the done signal reached the threshold)."""
        self.reset(frames, text_states, text_mask)
        n = frames.shape[0]
        goal = torch.zeros_like(frames, device=self.device)
        steps = torch.full((n,), max_steps, dtype=torch.long, device=self.device)
        found = torch.zeros(n, dtype=torch.bool, device=self.device)
        for t in range(1, max_steps + 1):
            s = self.step()
            new = (s.done >= threshold) & ~found
            last = t == max_steps
            take = new | (last & ~found)
            goal[take] = s.frames[take]
            steps[new] = t
            found |= new
            if found.all():
                break
        return goal, steps, found
