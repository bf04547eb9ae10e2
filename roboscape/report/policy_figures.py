"""The paper's Figures 4 and 5: evaluation episodes in ManiSkill with every method side by side, in
domain (Figure 4) and out of domain (Figure 5).

Each task contributes its cell's first episode, the one ``eval_policy`` records the frames of. An
episode's initial state depends on its task, domain and index alone
(:func:`roboscape.eval.policy_eval.episode_seed`), so the methods' rows of a task start from the same
state and differ only by the policy. Each row names the method and whether the episode succeeded
(``success_once``, the tables' measure). A GIF plays the same episodes, tasks as rows and methods as
columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from roboscape.report.paper_style import paper_style, save_png_pdf  # noqa: E402
from roboscape.report.rollout_figures import grid_gif  # noqa: E402
from roboscape.report.tables import METHOD_TITLES  # noqa: E402
from roboscape.sim.catalogue import TASK_TITLES  # noqa: E402


@dataclass(frozen=True)
class Rollout:
    """One evaluation episode of one method."""

    frames: np.ndarray  # (T+1, H, W, 3) uint8: the initial observation, then one per policy step
    success: bool  # success_once
    scene_id: str


def rollout_comparison(
    rollouts: Mapping[str, Mapping[str, Rollout]],
    png: str | Path,
    pdf: str | Path,
    gif: str | Path,
    title: str,
    n_cols: int = 6,
) -> None:
    """``rollouts[task][method]``: a panel per task, a row per method with ``n_cols`` evenly spaced
    policy steps of its episode (PNG and PDF), and a GIF of every episode at once."""
    if not rollouts or not all(rollouts.values()):
        raise ValueError("no rollouts to show")
    T = min(len(r.frames) for per_method in rollouts.values() for r in per_method.values())
    cols = np.linspace(0, T - 1, min(n_cols, T)).round().astype(int)
    rows = max(len(per_method) for per_method in rollouts.values())
    paper_style()
    fig = plt.figure(figsize=(1.3 * len(cols) + 2.4, (1.3 * rows + 0.5) * len(rollouts) + 0.4), layout="constrained")
    for panel, (task, per_method) in zip(
        fig.subfigures(len(rollouts), 1, squeeze=False)[:, 0], rollouts.items(), strict=True
    ):
        axes = panel.subplots(len(per_method), len(cols), squeeze=False)
        for ax_row, (method, r) in zip(axes, per_method.items(), strict=True):
            for ax, t in zip(ax_row, cols, strict=True):
                ax.imshow(r.frames[t])
                ax.set_xticks([])
                ax.set_yticks([])
            ax_row[0].set_ylabel(
                f"{METHOD_TITLES[method]}\n{'success' if r.success else 'failure'}",
                fontsize=7,
                rotation=0,
                ha="right",
                va="center",
                color="tab:green" if r.success else "tab:red",
            )
        for ax, t in zip(axes[0], cols, strict=True):
            ax.set_title(f"step {t}", fontsize=7)
        scenes = sorted({r.scene_id for r in per_method.values()})
        panel.suptitle(f"{TASK_TITLES[task]} ({', '.join(scenes)})", fontsize=9)
    fig.suptitle(title, fontsize=10)
    save_png_pdf(fig, png, pdf)
    grid_gif([[r.frames for r in per_method.values()] for per_method in rollouts.values()], gif)
