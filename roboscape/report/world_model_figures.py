"""Figures of a world model's held-out evaluation (rule ``eval_wm_<control>``): ground truth against
open-loop rollouts, error against the horizon, and the action WM under extreme and
out-of-distribution action sequences (the paper's Fig. 9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from roboscape.report.rollout_figures import grid_gif, horizon_curves, strip


def subset_figures(
    control: str,
    subset: str,
    media: dict,
    sampling: str,
    horizon_png: str | Path,
    rollouts_png: str | Path,
    rollouts_gif: str | Path,
    shown: int = 3,
) -> None:
    """The first ``shown`` clips of one subset: truth and rollout strips and GIFs, and the per-step curves."""
    title = f"{control} world model, {subset} clips, open loop from the first frame ({sampling}, 1 sample)"
    horizon_curves(media["per_step"], horizon_png, title)
    clips = range(min(shown, len(media["truth"])))
    strip({f"{kind} {i}": media[kind][i] for i in clips for kind in ("truth", "model")}, rollouts_png, title)
    grid_gif([[media["truth"][i], media["model"][i]] for i in clips], rollouts_gif)


def controllability_figures(frames: dict[str, np.ndarray], png: str | Path, gif: str | Path) -> None:
    """The first start frame's rollout under each action sequence, one row each (in the order of
    eval.json's ``sequences``), and a GIF of them three to a row."""
    strip(
        {name: seq[0] for name, seq in frames.items()},
        png,
        "action world model under extreme and out-of-distribution action sequences (same start frame)",
    )
    panels = [seq[0] for seq in frames.values()]
    panels += [np.zeros_like(panels[0])] * (-len(panels) % 3)
    grid_gif([panels[i : i + 3] for i in range(0, len(panels), 3)], gif)
