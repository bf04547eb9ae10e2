"""Learning curves measured in the simulator (rule ``eval_curve``, the points of the paper's Figure 2).

An RL run's PPO snapshots (:mod:`roboscape.rl.ppo`: the starting SFT policy, then evenly spaced
updates up to the final policy, each with its environment steps and training seconds) are each run
closed loop in ManiSkill on the same episodes: the first ``episodes`` of the table's cell, in and
out of domain (:func:`roboscape.eval.policy_eval.shard_episodes`), so that every point of every
method starts from the same initial states. A run's training reward is what PPO climbs; these
curves say whether the simulator agrees, whatever the reward was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from roboscape.eval.policy_eval import Episode, evaluate_shard
from roboscape.sim.policy_env import PolicyEnv

SNAPSHOT_INDEX = "snapshots.csv"


def read_snapshots(snapshots_dir: str | Path) -> pd.DataFrame:
    """The snapshots of a run, in update order: update, env_steps, wall_time_s, path (relative)."""
    index = Path(snapshots_dir) / SNAPSHOT_INDEX
    if not index.exists():
        raise FileNotFoundError(f"{snapshots_dir} has no {SNAPSHOT_INDEX}: not the snapshots of a PPO run")
    rows = pd.read_csv(index)
    if rows.empty:
        raise ValueError(f"{snapshots_dir}: the run saved no snapshots (its PPO section's snapshots is 0)")
    return rows.sort_values("update", ignore_index=True)


def evaluate_snapshots(
    snapshots_dir: str | Path,
    load: Callable[[Path], object],
    env: PolicyEnv,
    episodes: Sequence[Episode],
    partial_prefix: str | Path,
) -> list[dict]:
    """Every snapshot (loaded with ``load(dir)``) on ``episodes`` with its deterministic actions: one
    row per snapshot and episode. A killed job resumes: each snapshot's finished episodes are kept in
    ``<partial_prefix>.<update>.partial`` until it is done."""
    snapshots, rows = read_snapshots(snapshots_dir), []
    for snap in tqdm(list(snapshots.itertuples()), desc="snapshots", unit="snapshot"):
        policy = load(Path(snapshots_dir) / snap.path)
        done, _ = evaluate_shard(policy, env, episodes, 0, f"{partial_prefix}.{snap.update:08d}.partial")
        point = {"update": snap.update, "env_steps": snap.env_steps, "wall_time_s": snap.wall_time_s}
        rows += [{**point, **r} for r in done]
    return rows
