"""The world models' control inputs for a batch of token windows: the action WM's actions, or the
text WM's instruction states, looked up by row in the instruction cache
(:func:`roboscape.models.text_encoder.load_instruction_cache`)."""

from __future__ import annotations

import torch


class TextControl:
    """Looks up a batch's instruction states in the cache (moved to the model's device once)."""

    def __init__(self, states: torch.Tensor, mask: torch.Tensor):
        self.states, self.mask = states, mask

    def __call__(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.states.device != rows.device:
            self.states, self.mask = self.states.to(rows.device), self.mask.to(rows.device)
        return self.states[rows], self.mask[rows]


def control_inputs(batch: dict, text: TextControl | None) -> tuple[torch.Tensor, ...]:
    """The world model's control arguments for a batch: its actions, or its instructions' states and mask."""
    return (batch["actions"],) if text is None else text(batch["instruction"])
