"""Figures of world-model rollouts: image strips and GIFs a person can look at, and error curves."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from roboscape.utils.io import atomic_path  # noqa: E402


def save_figure(fig, path: str | Path) -> None:
    """Write a Matplotlib figure as a PNG (atomically) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def strip(
    rows: dict[str, np.ndarray], path: str | Path, title: str, n_cols: int = 8, col_titles: list[str] | None = None
) -> None:
    """One row per label: ``n_cols`` evenly spaced frames of its (T, H, W, 3) sequence, under
    ``col_titles`` (default: the step ahead, t+1 ...)."""
    T = min(len(v) for v in rows.values())
    cols = np.linspace(0, T - 1, min(n_cols, T)).round().astype(int)
    fig, axes = plt.subplots(
        len(rows), len(cols), figsize=(1.4 * len(cols) + 1.5, 1.4 * len(rows) + 0.5), squeeze=False
    )
    for ax_row, (label, frames) in zip(axes, rows.items(), strict=True):
        for ax, t in zip(ax_row, cols, strict=True):
            ax.imshow(frames[t])
            ax.set_xticks([])
            ax.set_yticks([])
        ax_row[0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    for i, (ax, t) in enumerate(zip(axes[0], cols, strict=True)):
        ax.set_title(col_titles[i] if col_titles else f"t+{t + 1}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def grid_gif(panels: list[list[np.ndarray]], path: str | Path, fps: int = 8) -> None:
    """A GIF of a grid of (T, H, W, 3) sequences: ``panels[row][col]``; shorter ones hold their last
    frame, and a row with fewer panels than the widest is filled with black."""
    T = max(len(p) for row in panels for p in row)
    width = max(len(row) for row in panels)
    blank = np.zeros_like(panels[0][0][:1])
    panels = [[*row, *[blank] * (width - len(row))] for row in panels]

    def at(p: np.ndarray, t: int) -> np.ndarray:
        return p[min(t, len(p) - 1)]

    frames = [
        np.concatenate([np.concatenate([at(p, t) for p in row], axis=1) for row in panels], axis=0) for t in range(T)
    ]
    with atomic_path(path) as tmp:
        imageio.mimsave(tmp, frames, format="GIF", duration=1000 / fps, loop=0)


def horizon_curves(per_step: dict[str, dict[str, list[float]]], path: str | Path, title: str) -> None:
    """PSNR, SSIM and perceptual distance against the rollout step, one line per predictor."""
    metrics = ("psnr", "ssim", "perceptual")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, m in zip(axes, metrics, strict=True):
        for name, curves in per_step.items():
            steps = np.arange(1, len(curves[m]) + 1)
            ax.plot(steps, curves[m], label=name.replace("_", " "), lw=2 if name == "model" else 1)
        ax.set_xlabel("frames ahead")
        ax.set_title(m + (" (lower is better)" if m == "perceptual" else ""))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
