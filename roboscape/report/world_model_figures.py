"""Figures of a world model's held-out evaluation (rule ``eval_wm_<control>``): ground truth against
open-loop rollouts, error against the horizon, and the action WM under extreme and
out-of-distribution action sequences (the paper's Fig. 9), the same sequences against the
simulator (rule ``controllability``), and a policy's episodes against the simulator (rule
``policy_drift``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from roboscape.report.rollout_figures import grid_gif, horizon_curves, save_figure, strip


def gif_in_rows(panels: list[np.ndarray], gif: str | Path, per_row: int = 3) -> None:
    """A GIF of (T, H, W, 3) sequences, ``per_row`` to a row (the last row padded with black)."""
    panels = panels + [np.zeros_like(panels[0])] * (-len(panels) % per_row)
    grid_gif([panels[i : i + per_row] for i in range(0, len(panels), per_row)], gif)


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
    gif_in_rows([seq[0] for seq in frames.values()], gif)


def simulator_comparison(
    result: dict,
    media: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
    subset: str,
    png: str | Path,
    gif: str | Path,
) -> None:
    """One subset's first start state under every sequence: a strip (the simulator's row over the
    world model's, per sequence) and a GIF (simulator | world model pairs, three to a row)."""
    start = result["subsets"][subset]["start_states"][0]
    rows = {
        f"{name}: {world}": frames[0]
        for name, pair in media[subset].items()
        for world, frames in zip(("sim", "WM"), pair, strict=True)
    }
    pairs = [np.concatenate([sim[0], model[0]], axis=2) for sim, model in media[subset].values()]
    pair_figures(rows, pairs, f"{subset}: {start['scene_id']} ({start['episode_seed']})", png, gif)


def pair_figures(
    rows: dict[str, np.ndarray], pairs: list[np.ndarray], title: str, png: str | Path, gif: str | Path
) -> None:
    """A strip of ``rows`` (T+1, H, W, 3) at six evenly spaced steps, and a GIF of the simulator |
    world model ``pairs`` (T+1, H, 2W, 3), three to a row."""
    steps = min(len(v) for v in rows.values())
    strip(
        rows,
        png,
        title,
        n_cols=6,
        col_titles=[f"t={t}" for t in np.linspace(0, steps - 1, min(6, steps)).round().astype(int)],
    )
    gif_in_rows(pairs, gif)


def drift_comparison(
    result: dict, media: dict[str, tuple[np.ndarray, np.ndarray]], subset: str, png: str | Path, gif: str | Path
) -> None:
    """One subset of rule ``policy_drift``: a strip of its first three start states' episodes (the
    simulator's row over the world model's) and a GIF of every start state's simulator | world model pair."""
    sim, model = media[subset]
    starts = result["subsets"][subset]["start_states"]
    rows = {
        f"{starts[i]['scene_id']} ({starts[i]['episode_seed']}): {world}": frames[i]
        for i in range(min(3, len(sim)))
        for world, frames in (("sim", sim), ("WM", model))
    }
    pairs = [np.concatenate([s, m], axis=2) for s, m in zip(sim, model, strict=True)]
    pair_figures(rows, pairs, f"{subset}: the policy's episodes, simulator over world model", png, gif)


def margin_bars(result: dict, png: str | Path, metric: str = "perceptual") -> None:
    """Per sequence and subset, the world model's margin over each floor -- copying the first frame,
    and copying its tokenized reconstruction -- (positive: better than copying) with two clustered
    standard errors."""
    names = result["sequences"]
    subsets = list(result["subsets"])
    floors = result["floors"]
    fig, axes = plt.subplots(1, len(floors), figsize=(11, 0.35 * len(names) + 1.2), sharey=True)
    y = np.arange(len(names))
    height = 0.8 / len(subsets)
    for ax, (floor, title) in zip(axes, floors.items(), strict=True):
        for i, subset in enumerate(subsets):
            seqs = result["subsets"][subset]["sequences"]
            margin = [seqs[n]["margin_over_floor"][floor][metric] for n in names]
            err = [2 * (seqs[n]["margin_standard_error"][floor][metric] or 0.0) for n in names]
            ax.barh(y + i * height, margin, height, xerr=err, label=subset, capsize=2)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel(f"{metric} margin over {title}\n(± 2 SE; > 0: better)", fontsize=8)
    axes[0].set_yticks(y + height * (len(subsets) - 1) / 2, names, fontsize=7)
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, png)


def drift_figure(result: dict, png: str | Path, title: str) -> None:
    """Per subset, along the policy's episodes (rule ``policy_drift``): the world model's perceptual
    distance to the simulator's frame under the same actions per step, next to copying the first
    frame and its tokenization; and the share of episodes the world model's done signal calls
    solved against the share the simulator does."""
    subsets = list(result["subsets"])
    fig, axes = plt.subplots(2, len(subsets), figsize=(4.5 * len(subsets), 6), squeeze=False)
    for col, subset in enumerate(subsets):
        block = result["subsets"][subset]
        per_step = block["frames"]["per_step"]
        steps = np.arange(1, len(per_step["model"]["perceptual"]) + 1)
        ax = axes[0, col]
        for name, label in (
            ("model", "world model"),
            ("copy_first_frame", "copying the first frame"),
            ("copy_first_frame_tokenized", "copying its tokenization"),
        ):
            ax.plot(steps, per_step[name]["perceptual"], label=label)
        ax.set_title(f"{subset} ({len(block['start_states'])} start states)", fontsize=9)
        ax.set_ylabel("perceptual distance to the simulator", fontsize=8)
        ax.legend(fontsize=7)
        done = block["done_against_success"]
        ax = axes[1, col]
        ax.plot(steps, done["per_step"]["world_model_done"], label="world model: done")
        ax.plot(steps, done["per_step"]["simulator_success"], label="simulator: solved")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("policy step", fontsize=8)
        for a in axes[:, col]:
            a.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("share of episodes", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, png)
