"""The data stage's totals over the trajectory jobs' summaries."""

from __future__ import annotations

from roboscape.sim.shard_summary import merge_summaries


def shard(
    kept: dict, requested: dict, failures: dict, seconds: float, successful: int, frames: int, sampled: int = 0
) -> dict:
    return {
        "kept": kept,
        "requested": requested,
        "failed_attempts_by_cause": failures,
        "seconds": seconds,
        "kept_successful": successful,
        "kept_with_sampled_plans": sampled,
        "frames": frames,
    }


def test_totals_add_every_shard_up_and_sort_the_causes():
    total = merge_summaries(
        [
            shard({"optimal": 3, "suboptimal": 2}, {"optimal": 3, "suboptimal": 3}, {"plan": 2}, 30.0, 4, 500, 1),
            shard(
                {"optimal": 3, "exploratory": 1}, {"optimal": 3, "exploratory": 1}, {"ik": 1, "plan": 1}, 60.0, 3, 700
            ),
        ]
    )
    assert total["shards"] == 2 and total["frames"] == 1200 and total["kept_successful"] == 7
    assert total["kept_with_sampled_plans"] == 1
    assert total["kept"] == {"optimal": 6, "suboptimal": 2, "exploratory": 1}
    assert total["requested"] == {"optimal": 6, "suboptimal": 3, "exploratory": 1}
    assert list(total["failed_attempts_by_cause"].items()) == [("ik", 1), ("plan", 3)]
    assert total["job_seconds"] == 90.0 and total["trajectories_per_minute_per_process"] == 6.0  # 9 in 1.5 min


def test_no_time_recorded_gives_no_throughput():
    assert merge_summaries([shard({}, {}, {}, 0.0, 0, 0)])["trajectories_per_minute_per_process"] is None
