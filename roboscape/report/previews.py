"""Trajectory previews: a GIF and a key-frame sheet per task, from the recorded frames.

Each row is one recorded episode (the first optimal and the first suboptimal one of every
suboptimal method found), third view and wrist side by side.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from roboscape.report.rollout_figures import grid_gif  # noqa: E402
from roboscape.sim.trajectory_io import Episode, TrajectoryShard  # noqa: E402
from roboscape.utils.io import atomic_path  # noqa: E402


def _kind(meta: dict) -> str:
    return f"suboptimal ({meta['suboptimal_method']})" if meta["label"] == "suboptimal" else meta["label"]


def pick_episodes(h5_paths: list[str | Path], max_rows: int = 5) -> list[Episode]:
    """The first optimal episode, the first of each suboptimal method and the first exploratory one."""
    chosen: dict[str, Episode] = {}
    for path in h5_paths:
        with TrajectoryShard(path) as shard:
            for i, meta in enumerate(shard.episodes):
                key = _kind(meta)
                if key not in chosen:
                    chosen[key] = shard.read(i)
                if len(chosen) >= max_rows:
                    return list(chosen.values())
    return list(chosen.values())


def _side_by_side(ep: Episode) -> np.ndarray:
    return np.concatenate([ep.rgb["third_view"], ep.rgb["wrist"]], axis=2)


def write_gif(episodes: list[Episode], path: str | Path, fps: int = 12, every: int = 2) -> None:
    """One row per episode; shorter episodes hold their last frame."""
    grid_gif([[_side_by_side(ep)[::every]] for ep in episodes], path, fps=fps)


def write_sheet(episodes: list[Episode], path: str | Path, n_keyframes: int = 6) -> None:
    fig, axes = plt.subplots(
        len(episodes), n_keyframes, figsize=(2.2 * n_keyframes, 1.3 * len(episodes) + 0.6), squeeze=False
    )
    for row, ep in zip(axes, episodes, strict=True):
        frames = _side_by_side(ep)
        idx = np.linspace(0, len(frames) - 1, n_keyframes).round().astype(int)
        for ax, t in zip(row, idx, strict=True):
            ax.imshow(frames[t])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"t={t}" + (" done" if t > 0 and ep.success[t - 1] else ""), fontsize=7)
        m = ep.meta
        kind = _kind(m).replace(" (", "\n(")
        row[0].set_ylabel(f"{kind}\n{'solved' if m['success'] else 'not solved'}", fontsize=7)
    fig.suptitle(f"{episodes[0].meta['instruction']}  [{episodes[0].meta['scene_id']}]\nthird view | wrist", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
