"""The closed-loop evaluation's episodes and statistics."""

from __future__ import annotations

import numpy as np
import pytest

from roboscape.eval.episode_records import summarise
from roboscape.eval.policy_eval import (
    SEED_BASE,
    cell_scenes,
    evaluate_shard,
    run_episodes,
    shard_episodes,
)
from roboscape.sim.catalogue import MULTITASK, SceneSpec, build_catalogue, group_domains, multitask_scene_ids

from fakes import ConstantPolicy, FakeEnv

SCENES = [
    SceneSpec(f"push/o{i}-plate-wood", "push", f"o{i}", "plate", "wood", "ood", "unseen_object") for i in range(3)
]


def test_shards_partition_a_cell_and_its_seeds_are_disjoint_from_the_datas():
    shards = [shard_episodes(SCENES, "push", "ood", 10, k, 3) for k in range(3)]
    indices = sorted(e.index for s in shards for e in s)
    assert indices == list(range(10))
    episodes = [e for s in shards for e in s]
    assert all(SEED_BASE <= e.seed < 2**32 for e in episodes) and len({e.seed for e in episodes}) == 10
    assert {e.scene.scene_id for e in episodes} == {s.scene_id for s in SCENES}  # round robin
    assert shard_episodes(SCENES, "push", "ood", 10, 1, 3) == shards[1]  # a pure function
    assert shard_episodes(SCENES, "push", "ind", 10, 1, 3) != shards[1]
    with pytest.raises(ValueError, match="shard 3 of 3"):
        shard_episodes(SCENES, "push", "ood", 10, 3, 3)


def test_the_multitask_cell_runs_round_robin_over_its_scenes_of_both_tasks_in_domain_only():
    table2 = multitask_scene_ids(["pick_place", "move_to_aim"], ["green bell pepper", "peach"], "plate", "marble")
    catalogue = build_catalogue(0, ["pick_place", "push", "move_to_aim"], 3, 1, multitask=table2)
    scenes = cell_scenes(catalogue, MULTITASK, "ind", 1)
    episodes = shard_episodes(scenes, MULTITASK, "ind", 8, 0, 1)
    assert [e.scene.scene_id for e in episodes] == table2 * 2
    assert cell_scenes(catalogue, "push", "ind", 1) == catalogue.training_scenes("push", 1)
    # a task's cells keep their seeds: the group of a single-task policy is its task
    assert shard_episodes(scenes, "push", "ind", 2, 0, 1)[0].seed != episodes[0].seed
    with pytest.raises(ValueError, match="in domain only"):
        cell_scenes(catalogue, MULTITASK, "ood", 1)


def test_episodes_count_success_once_at_the_end_and_nan_as_a_failure():
    episodes = shard_episodes(SCENES, "push", "ood", 2, 0, 1)
    rows, videos = run_episodes(ConstantPolicy(0.6), FakeEnv(), episodes, record=1)
    assert [r["success_at_end"] for r in rows] == [True, True] and rows[0]["steps"] == 4 and len(videos) == 1
    assert videos[0].shape == (5, 2, 2, 3)
    rows, _ = run_episodes(ConstantPolicy(float("nan")), FakeEnv(), episodes)
    assert [(r["success_once"], r["failure"], r["steps"]) for r in rows] == [(False, "nonfinite_action", 1)] * 2
    summary = summarise(rows)
    cell = summary["cells"]["push/ood"]
    assert cell["episodes"] == 2 and cell["success_at_end"]["rate"] == 0 and cell["failures"] == {"nonfinite_action": 2}
    assert set(summary["scenes"]) == {SCENES[0].scene_id, SCENES[1].scene_id}


class KilledEnv(FakeEnv):
    """Counts its resets; with ``kill_at``, dies at that reset as a killed job would."""

    def __init__(self, kill_at: int | None = None):
        self.resets, self.kill_at = [], kill_at

    def reset(self, options):
        if len(self.resets) == self.kill_at:
            raise KeyboardInterrupt
        self.resets.append(options["episode_seed"])
        return super().reset(options)


def test_a_killed_shard_resumes_from_the_episodes_it_finished(tmp_path):
    episodes = shard_episodes(SCENES, "push", "ood", 5, 0, 1)
    straight, videos = evaluate_shard(ConstantPolicy(0.3), FakeEnv(), episodes, 1, tmp_path / "straight.partial")
    partial = tmp_path / "shard.partial"
    with pytest.raises(KeyboardInterrupt):
        evaluate_shard(ConstantPolicy(0.3), KilledEnv(kill_at=3), episodes, 1, partial)
    with partial.open("a") as fh:
        fh.write('{"episode": 3, "task": "pu')  # a line the kill cut short
    env = KilledEnv()
    resumed, resumed_videos = evaluate_shard(ConstantPolicy(0.3), env, episodes, 1, partial)
    assert env.resets == [episodes[i].seed for i in (0, 3, 4)]  # the first again (its frames), then those not done
    assert resumed == straight and not partial.exists()
    assert np.array_equal(resumed_videos[0], videos[0])


def test_a_task_policy_is_evaluated_in_both_domains_and_the_multi_task_one_in_domain():
    assert group_domains("push") == ("ind", "ood") and group_domains(MULTITASK) == ("ind",)
