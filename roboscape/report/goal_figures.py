"""The imagined goals of one task, to look at: initial frame | imagined goal | the planner's final frame."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from roboscape.utils.io import atomic_path  # noqa: E402


def goal_sheet(goals: dict, path: str | Path, rows: int = 6) -> None:
    """Up to ``rows`` initial states, in-domain ones first and then out-of-domain ones, evenly spaced."""
    order = [i for split in ("ind", "ood") for i in range(len(goals["split"])) if goals["split"][i] == split]
    picked = [order[i] for i in np.linspace(0, len(order) - 1, min(rows, len(order))).round().astype(int)]
    fig, axes = plt.subplots(len(picked), 3, figsize=(6.6, 2.2 * len(picked) + 0.4), squeeze=False)
    for ax_row, i in zip(axes, picked, strict=True):
        reached = (
            f"done at step {goals['steps'][i]}" if goals["reached"][i] else f"not done in {goals['steps'][i]} steps"
        )
        for ax, key, title in zip(
            ax_row,
            ("initial", "goal", "final"),
            ("initial frame", f"imagined goal ({reached})", "planner's final frame"),
            strict=True,
        ):
            ax.imshow(goals[key][i])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=7)
        ax_row[0].set_ylabel(f"{goals['scene_id'][i]}\n({goals['split'][i]})", fontsize=6)
    fig.suptitle(goals["instruction"][picked[0]] if picked else "", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
