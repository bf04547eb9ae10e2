"""The evaluation's records: the recorded frames' file, and success rates from the episode rows."""

from __future__ import annotations

import numpy as np

from roboscape.eval.episode_records import load_recorded, save_recorded, summarise
from roboscape.utils.stats import wilson_interval


def test_a_policys_shard_keeps_each_domains_recorded_frames_apart(tmp_path):
    frames = {d: np.full((3, 4, 4, 3), i, np.uint8) for i, d in enumerate(("ind", "ood"))}
    save_recorded({(d, 0): frames[d] for d in ("ind", "ood")}, tmp_path / "shard.npz")
    loaded = load_recorded(tmp_path / "shard.npz")
    assert sorted(loaded) == [("ind", 0), ("ood", 0)]
    for d in ("ind", "ood"):
        np.testing.assert_array_equal(loaded[(d, 0)], frames[d])


def row(scene: str, domain: str, once: bool, end: bool, seed: int, failure: str | None = None) -> dict:
    return dict(
        task="push", domain=domain, scene_id=scene, success_once=once, success_at_end=end, failure=failure, seed=seed
    )


def test_success_rates_per_cell_and_scene_with_wilson_intervals_counts_and_causes():
    rows = [
        row("push/a", "ind", True, False, 7),
        row("push/a", "ind", True, True, 3),
        row("push/b", "ind", False, False, 5, "nonfinite_action"),
        row("push/c", "ood", False, False, 9),
    ]
    summary = summarise(rows)
    assert list(summary["cells"]) == ["push/ind", "push/ood"] and list(summary["scenes"]) == [
        "push/a",
        "push/b",
        "push/c",
    ]
    ind = summary["cells"]["push/ind"]
    assert ind["episodes"] == 3 and ind["seeds"] == [3, 5, 7] and ind["failures"] == {"nonfinite_action": 1}
    assert ind["success_once"] == {"rate": 2 / 3, "successes": 2, "ci95": list(wilson_interval(2, 3))}
    assert ind["success_at_end"] == {"rate": 1 / 3, "successes": 1, "ci95": list(wilson_interval(1, 3))}
    assert summary["scenes"]["push/a"]["success_at_end"]["rate"] == 0.5
    assert (
        summary["cells"]["push/ood"]["success_once"]["successes"] == 0
        and summary["cells"]["push/ood"]["failures"] == {}
    )
