"""Learned rewards: the two baselines the paper sets against its world-model reward (section 4.2),
adapted to our world model as the paper did.

- ``embedding`` (iVideoGPT): an MLP head on the action world model's hidden states -- for each
  generated frame, the pooled final hidden states it was predicted from, which the done head also
  reads (``WorldModelOutput.features``). The world model stays frozen: the head learns to read its
  features, so every reward runs in the same world model.
- ``proxy`` (DiWA): an external model on the frame alone -- a small CNN at the world model's
  resolution -- trained on real frames.

Both regress the simulator's recorded rule-based dense reward of each frame, as ``symlog`` with a
mean squared error (iVideoGPT's and DreamerV3's transform), and give ``symexp`` of their output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from roboscape.models.pretrained import Pretrained
from roboscape.utils.config import JsonConfig

KINDS = ("embedding", "proxy")


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


@dataclass
class RewardModelConfig(JsonConfig):
    kind: str = "embedding"
    """embedding: a head on the world model's hidden states; proxy: a CNN on frames"""
    feature_dim: int = 256
    """embedding: width of the world model's hidden states (its ``dim``)"""
    image_size: int = 128
    """proxy: frames are image_size x image_size (the world model's resolution)"""
    channels: tuple[int, ...] = (32, 64, 64)
    """proxy: the CNN's layers (NatureCNN: 8x8/4, 4x4/2, 3x3/1)"""
    hidden_dim: int = 256
    """width of the MLP that gives the reward"""

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if self.kind not in KINDS:
            raise ValueError(f"unknown reward model {self.kind!r}; choose one of {KINDS}")
        if self.kind == "proxy" and (len(self.channels) != 3 or self.image_size < 36):
            raise ValueError("proxy: the CNN has 3 layers and needs frames of at least 36 px")


class RewardModel(nn.Module, Pretrained):
    """``forward(x)`` -> symlog reward (N,); ``reward(x)`` -> reward (N,). ``x``: hidden states
    (N, feature_dim) for ``embedding``, frames (N, 3, H, W) in [-1, 1] for ``proxy``."""

    KIND = "reward_model"
    CONFIG = RewardModelConfig

    def __init__(self, cfg: RewardModelConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.kind == "embedding":
            self.trunk: nn.Module = nn.LayerNorm(cfg.feature_dim)
            width = cfg.feature_dim
        else:
            c1, c2, c3 = cfg.channels
            self.trunk = nn.Sequential(
                nn.Conv2d(3, c1, 8, stride=4),
                nn.ReLU(),
                nn.Conv2d(c1, c2, 4, stride=2),
                nn.ReLU(),
                nn.Conv2d(c2, c3, 3, stride=1),
                nn.ReLU(),
                nn.Flatten(),
            )
            with torch.no_grad():
                width = self.trunk(torch.zeros(1, 3, cfg.image_size, cfg.image_size)).shape[1]
        self.head = nn.Sequential(
            nn.Linear(width, cfg.hidden_dim),
            nn.SiLU(),
            nn.Linear(cfg.hidden_dim, cfg.hidden_dim),
            nn.SiLU(),
            nn.Linear(cfg.hidden_dim, 1),
        )

    def _check(self, x: torch.Tensor) -> None:
        cfg = self.cfg
        if cfg.kind == "embedding" and (x.dim() != 2 or x.shape[1] != cfg.feature_dim):
            raise ValueError(f"the embedding reward reads hidden states (N, {cfg.feature_dim}), got {tuple(x.shape)}")
        if cfg.kind == "proxy" and (x.dim() != 4 or x.shape[1:] != (3, cfg.image_size, cfg.image_size)):
            s = cfg.image_size
            raise ValueError(f"the proxy reward reads frames (N, 3, {s}, {s}) in [-1, 1], got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.head(self.trunk(x.float())).squeeze(-1)

    @torch.no_grad()
    def reward(self, x: torch.Tensor) -> torch.Tensor:
        return symexp(self(x))
