"""Figures of the tokenizer: held-out frames and their reconstructions, stage by stage."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from roboscape.data.frames import to_uint8
from roboscape.models.tokenizer import Tokenizer
from roboscape.report.rollout_figures import strip
from roboscape.train.tokenizer_training import split_batch


@torch.no_grad()
def reconstruction_sheet(stages: dict[str, Tokenizer], frames: Dataset, path: str | Path, n: int = 8) -> None:
    """``n`` evenly spaced frames of ``frames``, one row as they are and one through each tokenizer
    (and first, if they have them, their context frames)."""
    picked = torch.linspace(0, len(frames) - 1, min(n, len(frames))).round().long().tolist()
    x, context = split_batch(torch.utils.data.default_collate([frames[i] for i in picked]))
    rows = {} if context is None else {"context frame": to_uint8(context).numpy()}
    rows["held-out frame"] = to_uint8(x).numpy()
    for name, model in stages.items():
        device = next(model.parameters()).device
        out = model.eval()(x.to(device), None if context is None else context.to(device))
        rows[name] = to_uint8(out.reconstruction).cpu().numpy()
    strip(
        rows,
        path,
        "tokenizer reconstructions of held-out (out-of-domain) frames",
        n_cols=len(picked),
        col_titles=[f"frame {i}" for i in picked],
    )
