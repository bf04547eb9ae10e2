"""OpenVLA's action tokens: each of the 7 action dimensions, normalised to [-1, 1] by the training
actions' 1st and 99th percentiles, falls into one of 256 uniform bins whose edges span [-1, 1]; bin
``k`` is the token ``text_vocab_size - 1 - k`` (the Llama vocabulary's last 256 ids), and decodes to
the centre between its edges.

256 edges make 255 centres, so OpenVLA's last bin (only an action of exactly +1 reaches it) decodes
like the one below it. The policy samples among the 255 bins that decode to distinct actions, so that
an action always encodes back to the token it was sampled as: PPO scores a stored action by its
tokens, and a sampled token must be the token its action re-encodes to.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class ActionTokenizer:
    def __init__(self, q01: Sequence[float], q99: Sequence[float], text_vocab_size: int, n_bins: int = 256):
        self.low = torch.tensor(q01, dtype=torch.float64)
        self.high = torch.tensor(q99, dtype=torch.float64)
        if self.low.shape != self.high.shape or (self.high < self.low).any():
            raise ValueError(f"q01 {list(q01)} and q99 {list(q99)} must have one entry per dimension, q01 <= q99")
        self.text_vocab_size, self.n_bins = text_vocab_size, n_bins
        self.edges = torch.linspace(-1.0, 1.0, n_bins, dtype=torch.float64)
        self.centres = (self.edges[:-1] + self.edges[1:]) / 2

    @property
    def decodable_bins(self) -> int:
        """Bins with an action of their own (the lowest ``n_bins - 1``)."""
        return self.n_bins - 1

    def normalise(self, action: torch.Tensor) -> torch.Tensor:
        """Environment units -> [-1, 1] (a dimension with q01 == q99 maps to 0)."""
        width = (self.high - self.low).clamp_min(1e-8)
        return (2 * (action.double().cpu() - self.low) / width - 1).clamp(-1.0, 1.0)

    def unnormalise(self, normalised: torch.Tensor) -> torch.Tensor:
        return 0.5 * (normalised + 1) * (self.high - self.low) + self.low

    def bins(self, action: torch.Tensor) -> torch.Tensor:
        """(..., 7) actions in environment units -> (..., 7) bin indices in [0, decodable_bins)."""
        index = torch.bucketize(self.normalise(action).contiguous(), self.edges, right=True) - 1
        return index.clamp(0, self.decodable_bins - 1)

    def actions(self, bins: torch.Tensor) -> torch.Tensor:
        """(..., 7) bin indices -> float32 actions in environment units (each bin's centre)."""
        centres = self.centres[bins.cpu().clamp(0, self.decodable_bins - 1)]
        return self.unnormalise(centres).float()

    def token_ids(self, bins: torch.Tensor) -> torch.Tensor:
        return self.text_vocab_size - 1 - bins

    def bins_of(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.text_vocab_size - 1 - token_ids
