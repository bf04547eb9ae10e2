"""Two world models on the same clips, compared paired."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from roboscape.eval.paired import compare, compare_controllability, paired_difference


def block(psnr, perceptual, clips=(0, 1, 2, 3), scenes=("a", "a", "b", "b"), seeds=(1, 1, 2, 2)) -> dict:
    """The open_loop block of an eval.json, with only what a paired comparison reads."""
    return {
        "per_clip": {
            "clip": list(clips),
            "scene_id": list(scenes),
            "episode_seed": list(seeds),
            "model": {"psnr": list(psnr), "ssim": [0.5] * len(clips), "perceptual": list(perceptual)},
        }
    }


def test_the_difference_is_per_clip_and_signed_so_that_positive_is_better():
    before = block([20.0, 22.0, 30.0, 31.0], [0.30, 0.20, 0.10, 0.10])
    after = block([21.0, 23.0, 30.5, 31.5], [0.25, 0.20, 0.12, 0.08])
    r = paired_difference(before, after, "psnr")
    assert r["difference"] == pytest.approx(0.75) and r["fraction_of_clips_better"] == 1.0
    assert (r["clips"], r["episodes"]) == (4, 2)
    # clustered by episode: two clusters of summed deviations (+0.5, -0.5) -> sqrt(2 * 0.5) / 4
    assert r["standard_error"] == pytest.approx(np.sqrt(2 * (0.5**2 + 0.5**2)) / 4)
    p = paired_difference(before, after, "perceptual")  # lower is better: a smaller distance counts positive
    assert p["difference"] == pytest.approx((0.05 + 0.0 - 0.02 + 0.02) / 4)
    assert p["fraction_of_clips_better"] == 0.5


def test_different_clips_or_no_per_clip_scores_are_refused():
    with pytest.raises(ValueError, match="different clips"):
        paired_difference(block([1] * 4, [0] * 4), block([1] * 4, [0] * 4, clips=(0, 1, 2, 5)), "psnr")
    with pytest.raises(ValueError, match="without per-clip scores"):
        paired_difference({}, block([1] * 4, [0] * 4), "psnr")
    with pytest.raises(ValueError, match="unknown metric"):
        paired_difference(block([1] * 4, [0] * 4), block([1] * 4, [0] * 4), "fvd")


def test_the_command_prints_every_subset_and_metric(tmp_path):
    files = []
    for name, psnr in (("before", [20.0, 22.0, 30.0, 31.0]), ("after", [21.0, 22.0, 30.0, 31.0])):
        ev = {subset: {"open_loop": block(psnr, [0.1] * 4)} for subset in ("heldout", "ood")}
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(ev))
    out = subprocess.run(
        [sys.executable, "-m", "roboscape.eval.paired", *map(str, files)], capture_output=True, text=True, check=True
    ).stdout
    assert "| heldout | psnr | +0.2500" in out and "| ood | perceptual | +0.0000" in out
    assert compare(*(json.loads(f.read_text()) for f in files))["ood"]["psnr"]["difference"] == pytest.approx(0.25)


def controllability(perceptual: list[float], starts=(("a", 1), ("a", 2), ("b", 3)), per_state: bool = True) -> dict:
    """A controllability.json with one subset and one sequence, with only what a paired comparison reads."""
    margins = {m: list(perceptual) for m in ("psnr", "ssim", "perceptual")}
    seq = {"margin_per_start_state": {"copy_first_frame": margins, "copy_first_frame_tokenized": margins}}
    return {
        "sequences": ["+x at trained extreme"],
        "subsets": {
            "ood": {
                "start_states": [{"scene_id": s, "episode_seed": e} for s, e in starts],
                "sequences": {"+x at trained extreme": seq if per_state else {}},
            }
        },
    }


def test_two_controllability_runs_compare_per_start_state_clustered_by_scene():
    before, after = controllability([0.01, 0.03, -0.02]), controllability([0.02, 0.05, 0.00])
    r = compare_controllability(before, after)["ood"]["+x at trained extreme"]["perceptual"]
    assert r["difference"] == pytest.approx((0.01 + 0.02 + 0.02) / 3) and r["fraction_better"] == 1.0
    assert (r["start_states"], r["scenes"]) == (3, 2)
    # clustered by scene: each scene's summed deviation from the mean difference counts once (G = 2)
    d = np.array([0.01, 0.02, 0.02]) - 0.05 / 3
    sums = np.array([d[0] + d[1], d[2]])
    assert r["standard_error"] == pytest.approx(np.sqrt(2 / 1 * (sums**2).sum()) / 3)
    with pytest.raises(ValueError, match="different start states"):
        compare_controllability(before, controllability([0.0] * 3, starts=(("a", 1), ("a", 2), ("c", 3))))
    with pytest.raises(ValueError, match="without per-start-state margins"):
        compare_controllability(controllability([0.0] * 3, per_state=False), after)


def test_the_command_compares_two_controllability_runs(tmp_path):
    files = [tmp_path / "before.json", tmp_path / "after.json"]
    files[0].write_text(json.dumps(controllability([0.01, 0.03, -0.02])))
    files[1].write_text(json.dumps(controllability([0.02, 0.05, 0.00])))
    out = subprocess.run(
        [sys.executable, "-m", "roboscape.eval.paired", *map(str, files)], capture_output=True, text=True, check=True
    ).stdout
    assert "| ood | +x at trained extreme | perceptual | +0.0167 ± " in out and "3 (2 scenes)" in out
