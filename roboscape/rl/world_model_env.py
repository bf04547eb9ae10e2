"""The world model as an RL environment (the paper's section 3.2 and Algorithm 1).

**Core.** :class:`WorldModelEnv` steps ``num_envs`` environments in one batch through the action
world model's rollout engine, with ManiSkill's vector-env contract (:mod:`roboscape.sim.vector_env`):
torch tensors, auto-reset per environment with ``final_observation`` / ``final_info``, and episode
metrics. An environment whose episode ends is reset alone (:meth:`Rollout.reset_envs`): its cached
frames, tokens and decoder context are replaced while the others go on, bit for bit.

**Spaces.** Observations and actions are those of the ManiSkill policy environment
(:mod:`roboscape.sim.policy_env`; the spaces are :mod:`roboscape.sim.policy_io`'s): the decoded
frame, the previous one, the instruction's embedding; an end-effector delta of ``frame_skip``
control steps and a gripper command. The same policy and the same PPO therefore run in both.

**Resets** draw real initial states from a pool (:mod:`roboscape.rl.goals`: recorded episodes'
first frames, by default of every in-domain scene the world model trained on -- the paper's
"generalizable environment initialization"), each with its scene's instruction and its imagined
goal.

**Reward** (Eqs. 7-9): ``alpha * 1[done_act >= sparse_threshold] + beta * sim(x_t, x_goal)``,
``sim = 1 - perceptual distance`` (ST-LPIPS offline, LPIPS with a network), batched over the
environments; or one of the learned-reward baselines (:class:`LearnedReward`). An episode is
``terminated`` when the action world model's done signal reaches ``done_threshold`` (its
``success``), ``truncated`` after ``episode_steps``.

**The done signal held** (``done_steps``; not in the paper). The done signal the reward and
``success`` read is the least of the last ``done_steps`` steps' done probabilities in the episode
(0 until it has had that many): it passes a threshold only when it has passed it that many steps in a
row. Under a trembling arm, the world model's imagined frames leave its data, and its done head
answers them with isolated spikes of "solved", each a step long; on its data's solved episodes it
rises and stays up (docs/rl-history.md, "Jitter in the recordings, and the done signal held").
1: each step's own probability, as Eq. 7.

**Bad actions.** NaN or infinite actions are an error; actions outside the range the world model
was trained on are clipped (the rollout engine) and counted per environment in
``info["action_clipped"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from roboscape.data.frames import to_model_range, to_uint8
from roboscape.models.perceptual import PerceptualDistance, fast_trunk
from roboscape.models.precision import check_precision, resolve_precision, warn_if_emulated
from roboscape.models.reward_models import KINDS, RewardModel
from roboscape.models.rollout import Rollout
from roboscape.models.tokenizer import Tokenizer
from roboscape.models.world_model import WorldModel
from roboscape.sim.policy_io import action_bounds, observation_space


@dataclass
class RewardConfig:
    kind: str = "general"
    """general: the paper's world-model reward; embedding or proxy: a learned-reward baseline"""
    alpha: float = 0.5
    """weight of the sparse reward, 1 where the action world model's done signal passes sparse_threshold"""
    beta: float = 0.5
    """weight of the dense reward, 1 - the perceptual distance to the imagined goal"""
    sparse_threshold: float = 0.5
    """theta_sps of Eq. 7"""
    perceptual_backend: str = "stlpips"
    """stlpips (shift-tolerant LPIPS, offline) or lpips (needs a network once)"""
    precision: str = "auto"
    """the perceptual trunk's arithmetic: fp32, bf16 (autocast; distances within rounding of fp32's,
    faster only where the hardware computes in bf16) or auto (bf16 there, fp32 elsewhere)"""
    image_size: int | None = 96
    """side in pixels the frame and the goal are resized to (antialiased) before the perceptual
    trunk; None: the world model's own frames. The trunk's cost falls with the pixel count, and the
    reward sees less detail (at the default tier's 128 px frames, 96 px keeps the reward's order of
    frames: docs/rl-history.md)"""

    def __post_init__(self):
        check_precision(self.precision, "reward")
        if self.image_size is not None and self.image_size < 16:
            raise ValueError(f"the reward's image_size must be at least 16 pixels, got {self.image_size}")


@dataclass
class WMEnvConfig:
    num_envs: int = 16
    """environments stepped together in one batch"""
    episode_steps: int = 60
    """world-model steps (policy steps) before an episode is truncated"""
    done_threshold: float = 0.5
    """the done probability that ends an episode as solved"""
    terminate_on_done: bool = False
    """end (and reset) an episode once the done signal passes done_threshold (off: the general
    reward is positive every step, so ending on done would teach the policy to avoid it)"""
    done_steps: int = 3
    """steps in a row the done signal must pass a threshold for the reward's sparse term and for
    ``success`` (the least of its last ``done_steps`` probabilities; 1: each step's own, Eq. 7)"""
    decoder: str = "fused-auto-by4"
    """the rollout's decoder (roboscape.models.inference_decoder: exact, or e.g. fused-auto-by4)"""
    temperature: float = 0.0
    """sampling temperature of the world model's tokens (0: greedy)"""
    guidance: float = 1.0
    """classifier-free guidance scale by the action (roboscape.models.rollout; 1: none)"""
    guidance_positions: str = "all"
    """where guidance applies: every token position, or ``hidden`` motion only (roboscape.models.rollout)"""
    precision: str = "fp32"
    """the world model's forward pass: fp32, bf16 (autocast) or auto (bf16 where the hardware computes
    in it; roboscape.models.rollout)"""

    def __post_init__(self):
        if self.done_steps < 1:
            raise ValueError(f"done_steps must be at least 1 (1: each step's own done signal), got {self.done_steps}")


def held_done(done: torch.Tensor, steps: int) -> torch.Tensor:
    """The done signal held for ``steps``: at each step of episodes' done probabilities (N, T), the
    least of that step's and the ``steps - 1`` before it (0 before the episode has had ``steps``),
    what the environment's reward and ``success`` read (:class:`WMEnvConfig`'s ``done_steps``)."""
    padded = torch.cat([done.new_zeros(done.shape[0], steps - 1), done], 1)
    return padded.unfold(1, steps, 1).min(-1).values


@dataclass
class InitialStates:
    """The pool resets draw from: real first frames (P, H, W, 3) uint8, their imagined goals, the
    sentence embedding of each one's instruction (P, D), and their scenes."""

    frames: np.ndarray
    goals: np.ndarray
    instructions: np.ndarray
    scene_ids: list[str]

    def __post_init__(self):
        n = len(self.frames)
        if not n or len(self.goals) != n or len(self.instructions) != n or len(self.scene_ids) != n:
            raise ValueError("initial states: as many frames, goals, instructions and scenes, at least one")


class Reward(Protocol):
    """What the environment asks of a reward: the goals of new episodes, then each step's rewards."""

    def reset(self, envs: torch.Tensor, goals: torch.Tensor) -> None:
        """Episodes begin in environments ``envs`` (indices) with goal frames (len(envs), 3, H, W) in [-1, 1]."""

    def __call__(self, frames: torch.Tensor, done: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Rewards (N,) of frames (N, 3, H, W) in [-1, 1], with the action world model's done
        probabilities (N,) and the hidden states (N, D) it predicted the frames from."""


def _head_weights(lin: nn.Module) -> torch.Tensor:
    """The channel weights (C,) of an LPIPS linear head, a bias-free 1x1 convolution to one channel."""
    conv = next(m for m in lin.modules() if isinstance(m, nn.Conv2d))
    if conv.bias is not None or conv.kernel_size != (1, 1) or conv.out_channels != 1:
        raise ValueError("expected LPIPS's bias-free 1x1 linear heads")
    return conv.weight.detach().flatten()


class GeneralReward:
    """Eqs. 7-9: ``alpha * 1[done >= theta_sps] + beta * (1 - d(frame, goal))``, ``d`` the perceptual
    distance. A goal is fixed for its episode, so its features (the LPIPS trunk's unit-normalised
    activations) are computed once, at the episode's start, and each step runs the trunk on the new
    frames alone -- half the work of ``d(frame, goal)``, which it equals (tested). The trunk runs
    channels-last, the layout oneDNN's convolutions are fastest in, and with shift-tolerant
    AlexNet's full-resolution first layer and its blur folded into one strided convolution
    (:func:`~roboscape.models.perceptual.fast_trunk`; bench/ppo_throughput.py gives the reward's
    share of a step); the distances move by float rounding only."""

    def __init__(self, cfg: RewardConfig, num_envs: int, device: str | torch.device = "cpu"):
        self.cfg, self.num_envs = cfg, num_envs
        self.perceptual = PerceptualDistance(cfg.perceptual_backend).to(device)
        self.trunk = fast_trunk(self.perceptual.model).to(memory_format=torch.channels_last)
        self.device_type = torch.device(device).type
        warn_if_emulated(cfg.precision, self.device_type, "reward trunk")
        self.bf16 = resolve_precision(cfg.precision, self.device_type) == "bf16"
        self._heads = [_head_weights(lin) for lin in self.perceptual.model.lins]
        self._goal_features: list[torch.Tensor] | None = None

    def features(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """The unit-normalised activations of each layer of the LPIPS trunk (LPIPS's own steps), in
        fp32 whatever the trunk computed in, of the frames at the config's ``image_size``."""
        lpips = self.perceptual.model
        x = frames.float()
        size = self.cfg.image_size
        if size is not None and x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device_type, torch.bfloat16, enabled=self.bf16):
            outs = self.trunk(lpips.scaling_layer(x) if lpips.version == "0.1" else x)
        outs = [o.float() for o in outs[: lpips.L]]
        return [o / (torch.sqrt((o**2).sum(dim=1, keepdim=True)) + 1e-10) for o in outs]

    def distance(self, features: list[torch.Tensor], goal_features: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS's sum over layers of its linear heads' spatial mean of ``(f - g)**2``. A head is a
        bias-free 1x1 convolution, so it is applied after the spatial mean: a dot product per frame
        instead of a convolution over every position."""
        layers = [
            ((f - g) ** 2).mean([2, 3]) @ weights
            for f, g, weights in zip(features, goal_features, self._heads, strict=True)
        ]
        return torch.stack(layers).sum(0)

    @torch.no_grad()
    def reset(self, envs: torch.Tensor, goals: torch.Tensor) -> None:
        new = self.features(goals)
        if self._goal_features is None:
            self._goal_features = [  # in the features' (channels-last) layout: mixed layouts subtract slowly
                f.new_zeros(self.num_envs, *f.shape[1:]).contiguous(memory_format=torch.channels_last) for f in new
            ]
        for mine, f in zip(self._goal_features, new, strict=True):
            mine[envs] = f

    @torch.no_grad()
    def reward(self, frames: torch.Tensor, done: torch.Tensor, goal_features: list[torch.Tensor]) -> torch.Tensor:
        """Eqs. 7-9 of frames (N, 3, H, W) against goals given by their features (N or 1 rows)."""
        sparse = (done >= self.cfg.sparse_threshold).float()
        dense = 1.0 - self.distance(self.features(frames), goal_features)
        return self.cfg.alpha * sparse + self.cfg.beta * dense

    @torch.no_grad()
    def __call__(self, frames: torch.Tensor, done: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        if self._goal_features is None:
            raise RuntimeError("the reward has no goals: reset() first")
        return self.reward(frames, done, self._goal_features)


class LearnedReward:
    """A learned-reward baseline (:mod:`roboscape.models.reward_models`) as the environment's
    reward: the ``embedding`` head reads the hidden states each frame was predicted from, the
    ``proxy`` the decoded frame. Neither looks at the goal."""

    def __init__(self, model: RewardModel):
        self.model = model.eval()

    def reset(self, envs: torch.Tensor, goals: torch.Tensor) -> None:
        pass

    @torch.no_grad()
    def __call__(self, frames: torch.Tensor, done: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.model.reward(features if self.model.cfg.kind == "embedding" else frames)


def make_reward(
    cfg: RewardConfig, num_envs: int, model_dir: str | Path | None = None, device: str | torch.device = "cpu"
) -> Reward:
    """The reward ``cfg.kind`` names, on ``device``: ``general``, or a learned baseline loaded from ``model_dir``."""
    if cfg.kind == "general":
        return GeneralReward(cfg, num_envs, device)
    if cfg.kind not in KINDS:
        raise ValueError(f"unknown reward {cfg.kind!r}; choose general or one of {KINDS}")
    if model_dir is None:
        raise ValueError(f"the {cfg.kind} reward is a trained model: give its directory")
    model = RewardModel.from_pretrained(model_dir, device)
    if model.cfg.kind != cfg.kind:
        raise ValueError(f"{model_dir} holds a {model.cfg.kind} reward model, not a {cfg.kind} one")
    return LearnedReward(model)


class WorldModelEnv:
    """``num_envs`` environments in the action world model (see the module docstring)."""

    def __init__(
        self,
        world_model: WorldModel,
        tokenizer: Tokenizer,
        states: InitialStates,
        cfg: WMEnvConfig,
        reward: Reward,
        seed: int = 0,
    ):
        if world_model.cfg.control != "action":
            raise ValueError("the environment steps the action world model")
        self.cfg, self.states, self.reward = cfg, states, reward
        self.rollout = Rollout.from_settings(world_model, tokenizer, cfg, seed=seed)
        self.num_envs = cfg.num_envs
        size = states.frames.shape[1]
        if size != tokenizer.cfg.image_size:
            raise ValueError(f"initial frames are {size} px, the tokenizer's {tokenizer.cfg.image_size} px")
        self.single_observation_space = observation_space(size, states.instructions.shape[1])
        low, high = action_bounds(world_model.cfg.frame_skip)
        self.single_action_space = gym.spaces.Box(low, high, dtype=np.float32)
        self.generator = torch.Generator().manual_seed(seed)
        self._state = torch.zeros(self.num_envs, dtype=torch.long)  # each environment's row of the pool
        self._started = False
        self._frame: torch.Tensor | None = None  # uint8 (N, H, W, 3)
        self._t = torch.zeros(self.num_envs, dtype=torch.long)
        self._return = torch.zeros(self.num_envs)
        self._success_once = torch.zeros(self.num_envs, dtype=torch.bool)
        self._recent_done = torch.zeros(self.num_envs, self.cfg.done_steps)  # the last done_steps probabilities

    # ------------------------------------------------------------------ helpers
    def _draw(self, n: int) -> torch.Tensor:
        return torch.randint(len(self.states.frames), (n,), generator=self.generator)

    def _obs(self, frame: torch.Tensor, prev: torch.Tensor) -> dict[str, torch.Tensor]:
        """New tensors every call: the caller keeps them while the environment moves on (an ended
        episode's reset writes into ``self._frame``)."""
        return {
            "rgb": frame.clone(),
            "prev_rgb": prev.clone(),
            "instruction": torch.from_numpy(self.states.instructions[self._state.numpy()]),
        }

    def _goals(self, rows: torch.Tensor) -> torch.Tensor:
        return to_model_range(torch.from_numpy(self.states.goals[rows.numpy()])).to(self.rollout.device)

    def _first_frames(self, rows: torch.Tensor) -> torch.Tensor:
        return to_model_range(torch.from_numpy(self.states.frames[rows.numpy()]))

    # ------------------------------------------------------------------ the contract
    def reset(self, seed: int | list[int] | None = None) -> tuple[dict[str, torch.Tensor], dict]:
        """Every environment from a new initial state (``seed``: the draws' seed; a list: its first)."""
        if seed is not None:
            self.generator.manual_seed(seed[0] if isinstance(seed, list) else seed)
        self._state = self._draw(self.num_envs)
        self.rollout.reset(self._first_frames(self._state))
        self.reward.reset(torch.arange(self.num_envs), self._goals(self._state))
        self._started = True
        self._frame = torch.from_numpy(self.states.frames[self._state.numpy()].copy())
        self._t.zero_()
        self._return.zero_()
        self._success_once.zero_()
        self._recent_done.zero_()
        return self._obs(self._frame, self._frame), {
            "scene_id": [self.states.scene_ids[i] for i in self._state.tolist()]
        }

    def step(self, actions: torch.Tensor):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = torch.as_tensor(actions, dtype=torch.float32)
        if actions.shape != (self.num_envs, *self.single_action_space.shape):
            raise ValueError(
                f"actions must be ({self.num_envs}, {self.single_action_space.shape[0]}), got {tuple(actions.shape)}"
            )
        if not torch.isfinite(actions).all():
            raise ValueError("actions contain NaN or infinite values")
        clipped = ((actions < self.rollout.low.cpu()) | (actions > self.rollout.high.cpu())).any(-1)
        out = self.rollout.step(actions)
        frames = out.frames.clamp(-1, 1)
        done = out.done.float().cpu()
        self._recent_done = torch.cat([self._recent_done[:, 1:], done[:, None]], 1)
        held = self._recent_done.min(1).values  # the done signal held for done_steps
        reward = self.reward(frames, held.to(out.done.device), out.features).float().cpu()
        success = held >= self.cfg.done_threshold
        prev, self._frame = self._frame, to_uint8(frames).cpu()
        self._t += 1
        self._return += reward
        self._success_once |= success
        terminated = success & self.cfg.terminate_on_done
        truncated = (self._t >= self.cfg.episode_steps) & ~terminated
        ended = terminated | truncated
        obs = self._obs(self._frame, prev)
        info = {"success": success, "done_prob": done, "action_clipped": clipped}
        if not ended.any():
            return obs, reward, terminated, truncated, info
        final_obs = obs  # new tensors (see _obs): the reset below does not touch them
        episode = {
            "return": self._return.clone(),
            "episode_len": self._t.clone(),
            "success_once": self._success_once.clone(),
            "success_at_end": success.clone(),
        }
        envs = torch.nonzero(ended).flatten()
        rows = self._draw(len(envs))
        self._state[envs] = rows
        self.rollout.reset_envs(envs, self._first_frames(rows))
        self.reward.reset(envs, self._goals(rows))
        self._frame[envs] = torch.from_numpy(self.states.frames[rows.numpy()].copy())
        self._t[envs], self._return[envs], self._success_once[envs] = 0, 0.0, False
        self._recent_done[envs] = 0.0
        obs = self._obs(self._frame, torch.where(ended[:, None, None, None], self._frame, prev))
        info.update(final_observation=final_obs, _final_info=ended, final_info={"success": success, "episode": episode})
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        pass


class SingleWorldModelEnv(gym.Env):
    """One environment of :class:`WorldModelEnv` with gymnasium's single-environment API (numpy
    observations, no auto-reset), e.g. for gymnasium's environment checker."""

    metadata = {"render_modes": []}

    def __init__(self, env: WorldModelEnv):
        if env.num_envs != 1:
            raise ValueError("the single-environment view needs a WorldModelEnv of one environment")
        self.env = env
        self.observation_space, self.action_space = env.single_observation_space, env.single_action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, info = self.env.reset(seed=seed if seed is not None else int(self.np_random.integers(2**31)))
        return {k: v[0].numpy() for k, v in obs.items()}, {"scene_id": info["scene_id"][0]}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(torch.as_tensor(np.asarray(action, np.float32))[None])
        if "final_observation" in info:
            obs = info["final_observation"]
        single = {"success": bool(info["success"][0]), "action_clipped": bool(info["action_clipped"][0])}
        return (
            {k: v[0].numpy() for k, v in obs.items()},
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            single,
        )
