"""Learning curves in the simulator: every snapshot of a run on the same episodes, and its points."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from roboscape.eval.learning_curves import evaluate_snapshots, read_snapshots
from roboscape.eval.policy_eval import shard_episodes
from roboscape.report.learning_curves import curve_points
from roboscape.sim.catalogue import SceneSpec

from fakes import ConstantPolicy, FakeEnv

SCENES = [SceneSpec("push/a-plate-wood", "push", "a", "plate", "wood", "ind", None)]
# the action each snapshot sends: 4 steps of it must sum past 1 to succeed (FakeEnv)
ACTION = {"update_00000000": 0.1, "update_00000002": 0.2, "update_00000004": 0.5}


def snapshots(tmp_path: Path) -> Path:
    rows = [{"update": u, "env_steps": 100 * u, "wall_time_s": 1.5 * u, "path": f"update_{u:08d}"} for u in (4, 0, 2)]
    pd.DataFrame(rows).to_csv(tmp_path / "snapshots.csv", index=False)
    return tmp_path


def test_every_snapshot_runs_the_same_episodes_in_update_order(tmp_path):
    episodes = shard_episodes(SCENES, "push", "ind", 3, 0, 1)
    rows = evaluate_snapshots(
        snapshots(tmp_path), lambda d: ConstantPolicy(ACTION[d.name]), FakeEnv(), episodes, tmp_path / "p"
    )
    table = pd.DataFrame(rows).assign(method="rl_world_model", run=0)
    assert table["update"].tolist() == [0] * 3 + [2] * 3 + [4] * 3
    assert table.groupby("update")["seed"].apply(tuple).nunique() == 1  # the same initial states
    assert table.groupby("update")["success_once"].sum().tolist() == [0, 0, 3]
    points = curve_points(table)
    assert points["env_steps"].tolist() == [0, 200, 400] and points["wall_time_s"].tolist() == [0, 3, 6]
    last = points.iloc[-1]
    assert (last["episodes"], last["successes"], last["success_rate"]) == (3, 3, 1.0)
    assert last["ci95_low"] < 1 and last["ci95_high"] == 1  # a Wilson interval, not a point
    assert not list(tmp_path.glob("*.partial"))
    # a second run that solves nothing, trained a little slower: pooled, each run's rate beside the pool
    other = table.assign(run=1, success_once=False, wall_time_s=table["wall_time_s"] + 1)
    pooled = curve_points(pd.concat([table, other])).iloc[-1]
    assert (pooled["episodes"], pooled["successes"], pooled["runs"]) == (6, 3, 2)
    assert pooled["run_success_rates"] == "1.0000;0.0000" and pooled["wall_time_s"] == 6.5
    assert pooled["env_steps"] == 400


def test_a_run_without_snapshots_is_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="snapshots.csv"):
        read_snapshots(tmp_path)
    pd.DataFrame(columns=["update", "env_steps", "wall_time_s", "path"]).to_csv(tmp_path / "snapshots.csv", index=False)
    with pytest.raises(ValueError, match="saved no snapshots"):
        read_snapshots(tmp_path)
