"""The paper's Figure 2: success rate in ManiSkill against training, for each reward PPO learned
from -- the rule reward (RL w. ManiSkill), the world model's general reward and the two learned
rewards (RL w. World Model) -- against environment steps and against training wall-clock time.

The points (:func:`curve_points`) are ``eval_curve``'s episodes (:mod:`roboscape.eval.learning_curves`)
counted per snapshot over a method's PPO runs (``rl.runs``, each evaluated on the same episodes),
each with its 95% Wilson interval, drawn as a band, and each run's own rate as a thin line beside
it: the runs of one method can part by tens of points (docs/rl-history.md). Wall-clock time is
PPO's own training time (rollouts and updates), the runs' mean; the world models and reward models
trained beforehand are not in it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from roboscape.report.paper_style import paper_style, save_png_pdf  # noqa: E402
from roboscape.sim.catalogue import TASK_TITLES  # noqa: E402
from roboscape.utils.stats import wilson_interval  # noqa: E402

REWARD_TITLES = {
    "rl_maniskill": "rule reward (RL w. ManiSkill)",
    "rl_world_model": "general reward (RL w. World Model)",
    "rl_world_model_embedding": "embedding reward (world model)",
    "rl_world_model_proxy": "proxy reward (world model)",
}
DOMAIN_TITLES = {"ind": "in domain", "ood": "out of domain"}
POINT_KEYS = ["method", "task", "domain", "update"]
AXES = (("env_steps", "environment steps", 1.0), ("wall_time_s", "training time (min)", 1 / 60))


def curve_points(rows: pd.DataFrame) -> pd.DataFrame:
    """One point per method, task, domain and snapshot, over the method's runs (``rows``' ``run``
    column): the runs' mean env steps and training time, episodes, successes and the success rate
    (``success_once``, the tables' measure) with its 95% Wilson interval, the number of runs and
    each run's rate (``run_success_rates``, ';'-joined in run order)."""

    def point(group: pd.DataFrame) -> pd.Series:
        n, k = len(group), int(group["success_once"].sum())
        low, high = wilson_interval(k, n)
        per_run = group.groupby("run", sort=True)
        return pd.Series(
            {
                "env_steps": per_run["env_steps"].first().mean(),
                "wall_time_s": per_run["wall_time_s"].first().mean(),
                "episodes": n,
                "successes": k,
                "success_rate": k / n,
                "ci95_low": low,
                "ci95_high": high,
                "runs": per_run.ngroups,
                "run_success_rates": ";".join(f"{r:.4f}" for r in per_run["success_once"].mean()),
            }
        )

    columns = ["run", "env_steps", "wall_time_s", "success_once"]
    return rows.groupby(POINT_KEYS, sort=True)[columns].apply(point).reset_index()


def learning_curves(points: pd.DataFrame, png: str | Path, pdf: str | Path) -> None:
    """One row of panels per task and domain, success rate against environment steps (left) and
    training time (right), one line per reward over its runs, and with several runs a thin line per run."""
    panels = list(points[["task", "domain"]].drop_duplicates().sort_values(["task", "domain"]).itertuples(index=False))
    if not panels:
        raise ValueError("no learning-curve points to plot")
    methods = [m for m in REWARD_TITLES if m in set(points["method"])]
    paper_style()
    colours = dict(zip(methods, sns.color_palette(n_colors=len(methods)), strict=True))
    fig, axes = plt.subplots(len(panels), 2, figsize=(9, 2.8 * len(panels) + 0.8), squeeze=False)
    for ax_row, (task, domain) in zip(axes, panels, strict=True):
        cell = points[(points["task"] == task) & (points["domain"] == domain)]
        for ax, (column, label, scale) in zip(ax_row, AXES, strict=True):
            for method in methods:
                line = cell[cell["method"] == method].sort_values("update")
                x = line[column] * scale
                ax.plot(x, 100 * line["success_rate"], marker="o", color=colours[method], label=REWARD_TITLES[method])
                ax.fill_between(x, 100 * line["ci95_low"], 100 * line["ci95_high"], color=colours[method], alpha=0.15)
                if line["runs"].max() > 1:
                    per_run = line["run_success_rates"].str.split(";", expand=True).astype(float)
                    for run in per_run:
                        ax.plot(x, 100 * per_run[run], color=colours[method], linewidth=0.7, alpha=0.5)
            ax.set_xlabel(label)
            ax.set_ylim(-2, 102)
            ax.set_title(f"{TASK_TITLES[task]}, {DOMAIN_TITLES[domain]}", fontsize=9)
        ax_row[0].set_ylabel("success rate (%)")
    episodes, runs = int(points["episodes"].max()), int(points["runs"].max())
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    over = f" over {runs} PPO runs (thin: each run)" if runs > 1 else ""
    fig.suptitle(
        f"Figure 2: success rate in ManiSkill while training, per reward{over} "
        f"({episodes} episode{'s' if episodes != 1 else ''} per point, 95% Wilson intervals)",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    save_png_pdf(fig, png, pdf)
