"""Figure 3 of the paper for one task: each reward along one successful planner trajectory of an
unseen scene, min-max normalised so that their shapes compare."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from roboscape.utils.io import atomic_path  # noqa: E402

STYLES = {"rule": ("simulator (rule-based)", "k", "--"), "general": ("general (ours)", "C3", "-"),
          "general_real_goal": ("general, the real final frame as goal", "C3", ":"),
          "embedding": ("embedding (iVideoGPT)", "C0", "-"), "proxy": ("proxy (DiWA)", "C2", "-")}  # fmt: skip


def pick_episode(frames: pd.DataFrame) -> pd.DataFrame:
    """The longest successful optimal out-of-domain episode (the paper's choice of subset); failing
    that a held-out in-domain one, then any episode."""
    for subset in ("ood", "heldout"):
        part = frames[(frames["subset"] == subset) & frames["solved"] & (frames["label"] == "optimal")]
        if not part.empty:
            return part[part["episode"] == part.groupby("episode").size().idxmax()]
    return frames[frames["episode"] == frames["episode"].iloc[0]]


def reward_curves(frames: pd.DataFrame, names: Sequence[str], path: str | Path, title: str) -> None:
    episode = pick_episode(frames)
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for name in names:
        label, color, style = STYLES[name]
        values = episode[name]
        span = values.max() - values.min()
        ax.plot(
            episode["step"], (values - values.min()) / span if span > 0 else values * 0, style, color=color, label=label
        )
    first = episode.iloc[0]
    ax.set(xlabel="policy step", ylabel="reward (min-max normalised)", ylim=(-0.05, 1.05))
    ax.set_title(f"{title}: {first['scene_id']} ({first['subset']}, {first['label']})", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
