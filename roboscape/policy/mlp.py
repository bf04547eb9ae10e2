"""The MLP policy (the paper's first policy): a small CNN over the current and the previous
third-view frame, the instruction's sentence embedding, an MLP torso, a Gaussian action head with a
state-independent log-std and a value head.

Observations are :mod:`roboscape.sim.policy_env`'s (``rgb``, ``prev_rgb``: uint8 (N, H, W, 3);
``instruction``: (N, D)), the same in ManiSkill and in the world model. The instruction tells the
policy which task it is doing (Table 2 trains one policy on two tasks).

Actions are in the environment's units (the policy rate's end-effector delta and gripper). The
network predicts them standardised by the SFT data's per-dimension mean and std (recorded in the
config), and its log-std is in those standardised units too, so every dimension starts with the
same relative exploration noise.

One interface for SFT, PPO, both environments and evaluation:

- ``act(obs, deterministic, generator) -> (action, log_prob, value)``: a sampled action (the mean
  with ``deterministic``), its log-probability and the state's value;
- ``evaluate(obs, action) -> (log_prob, entropy, value)``: what PPO's update needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from roboscape.models.pretrained import Pretrained
from roboscape.utils.config import JsonConfig

ACTION_DIM = 7


@dataclass
class MLPPolicyConfig(JsonConfig):
    image_size: int = 128  # frames are image_size x image_size (the world model's resolution)
    instruction_dim: int = 384  # width of the instruction's sentence embedding
    channels: tuple[int, ...] = (32, 64, 64)  # the CNN's layers (NatureCNN: 8x8/4, 4x4/2, 3x3/1)
    feature_dim: int = 256  # image features after the CNN
    instruction_features: int = 64  # the instruction's projection
    hidden_dim: int = 256  # width of the actor's and the critic's MLP
    log_std_init: float = -0.5  # initial log-std of the Gaussian, in standardised action units
    action_mean: list[float] = field(default_factory=lambda: [0.0] * ACTION_DIM)
    action_std: list[float] = field(default_factory=lambda: [1.0] * ACTION_DIM)

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if len(self.channels) != 3:
            raise ValueError(f"channels: the CNN has 3 layers, got {self.channels}")
        if len(self.action_mean) != ACTION_DIM or len(self.action_std) != ACTION_DIM or min(self.action_std) <= 0:
            raise ValueError(f"action_mean and action_std need {ACTION_DIM} entries, the std positive")
        if self.image_size < 36:
            raise ValueError(f"image_size must be at least 36 px for the CNN, got {self.image_size}")


class ActOutput(NamedTuple):
    action: torch.Tensor  # (N, 7)
    log_prob: torch.Tensor  # (N,)
    value: torch.Tensor  # (N,)


def _init(layer: nn.Module, gain: float = math.sqrt(2)) -> nn.Module:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class MLPPolicy(nn.Module, Pretrained):
    KIND = "mlp_policy"
    CONFIG = MLPPolicyConfig

    def __init__(self, cfg: MLPPolicyConfig):
        super().__init__()
        self.cfg = cfg
        c1, c2, c3 = cfg.channels
        self.cnn = nn.Sequential(
            _init(nn.Conv2d(6, c1, 8, stride=4)),
            nn.ReLU(),
            _init(nn.Conv2d(c1, c2, 4, stride=2)),
            nn.ReLU(),
            _init(nn.Conv2d(c2, c3, 3, stride=1)),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.cnn(torch.zeros(1, 6, cfg.image_size, cfg.image_size)).shape[1]
        self.image_features = nn.Sequential(_init(nn.Linear(flat, cfg.feature_dim)), nn.ReLU())
        self.instruction_features = nn.Sequential(
            _init(nn.Linear(cfg.instruction_dim, cfg.instruction_features)), nn.ReLU()
        )
        width = cfg.feature_dim + cfg.instruction_features
        self.actor = nn.Sequential(
            _init(nn.Linear(width, cfg.hidden_dim)),
            nn.ReLU(),
            _init(nn.Linear(cfg.hidden_dim, cfg.hidden_dim)),
            nn.ReLU(),
            _init(nn.Linear(cfg.hidden_dim, ACTION_DIM), gain=0.01),
        )
        self.critic = nn.Sequential(
            _init(nn.Linear(width, cfg.hidden_dim)),
            nn.ReLU(),
            _init(nn.Linear(cfg.hidden_dim, cfg.hidden_dim)),
            nn.ReLU(),
            _init(nn.Linear(cfg.hidden_dim, 1), gain=1.0),
        )
        self.log_std = nn.Parameter(torch.full((ACTION_DIM,), cfg.log_std_init))
        self.register_buffer("action_mean", torch.tensor(cfg.action_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("action_std", torch.tensor(cfg.action_std, dtype=torch.float32), persistent=False)

    # ------------------------------------------------------------------ inputs
    def _check(self, obs: dict[str, torch.Tensor]) -> None:
        s, d = self.cfg.image_size, self.cfg.instruction_dim
        for key in ("rgb", "prev_rgb"):
            frames = obs[key]
            if frames.dim() != 4 or frames.shape[1:] != (s, s, 3) or frames.dtype != torch.uint8:
                raise ValueError(
                    f"obs[{key!r}] must be uint8 (N, {s}, {s}, 3), got {frames.dtype} {tuple(frames.shape)}"
                )
        if obs["instruction"].dim() != 2 or obs["instruction"].shape[1] != d:
            raise ValueError(f"obs['instruction'] must be (N, {d}), got {tuple(obs['instruction'].shape)}")

    def check_space(self, space) -> None:
        """A clear error when an environment's observations (a gymnasium Dict space) are not what the
        policy takes."""
        frame, text = space["rgb"].shape, space["instruction"].shape
        s, d = self.cfg.image_size, self.cfg.instruction_dim
        if frame != (s, s, 3) or text != (d,):
            raise ValueError(
                f"the policy takes {s} px frames and {d}-d instructions; the environment gives {frame} frames and "
                f"{text} instructions"
            )

    def features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        self._check(obs)
        device = self.log_std.device
        frames = torch.cat([obs["rgb"], obs["prev_rgb"]], dim=-1).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        text = obs["instruction"].to(device, torch.float32)
        return torch.cat([self.image_features(self.cnn(frames)), self.instruction_features(text)], dim=-1)

    # ------------------------------------------------------------------ the distribution
    def distribution(self, features: torch.Tensor) -> torch.distributions.Normal:
        """The Gaussian over actions, in the environment's units."""
        mean = self.actor(features) * self.action_std + self.action_mean
        std = torch.exp(self.log_std) * self.action_std
        return torch.distributions.Normal(mean, std.expand_as(mean))

    def value(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.critic(self.features(obs)).squeeze(-1)

    def act(
        self, obs: dict[str, torch.Tensor], deterministic: bool = False, generator: torch.Generator | None = None
    ) -> ActOutput:
        h = self.features(obs)
        dist = self.distribution(h)
        if deterministic:
            action = dist.mean
        else:
            # drawn where the generator lives (the CPU's by default), so a seed gives the same noise on any device
            where = dist.mean.device if generator is None else generator.device
            noise = torch.randn(dist.mean.shape, generator=generator, device=where).to(dist.mean.device)
            action = dist.mean + dist.stddev * noise
        return ActOutput(action, dist.log_prob(action).sum(-1), self.critic(h).squeeze(-1))

    def evaluate(
        self, obs: dict[str, torch.Tensor], action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.features(obs)
        dist = self.distribution(h)
        action = action.to(h.device)
        return dist.log_prob(action).sum(-1), dist.entropy().sum(-1), self.critic(h).squeeze(-1)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The actor's mean in the units it predicts (``standardised``): what SFT regresses, through
        ``forward`` so that DistributedDataParallel averages its gradients over GPUs."""
        return self.actor(self.features(obs))

    def standardised(self, action: torch.Tensor) -> torch.Tensor:
        """Actions in the units the actor predicts (what SFT regresses)."""
        return (action.to(self.action_std.device) - self.action_mean) / self.action_std
