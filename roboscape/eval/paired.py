"""Two world models on the same held-out clips, or from the same start states, compared paired: what
changed between a "before" and an "after" (issue #27 §3 asks that the open-loop margins of eval_wm
must not get worse; §2 that every controllability sequence beats its floor).

Each model's margin over the copy floor carries its own standard error, but two models evaluated on
the same clips share each clip's difficulty: the difference of the two margins is then far less
uncertain than their standard errors suggest. This takes each clip's score over the horizon from two
``eval.json`` files (``open_loop.per_clip``, :mod:`roboscape.eval.world_model_eval`) and gives the
mean per-clip difference, signed so that positive means "after" is better, with its standard error
clustered by episode (clips of one episode overlap) and the share of clips where "after" is better.

The same for two ``controllability.json`` files (:mod:`roboscape.eval.controllability`) run from
the same start states: per subset and action sequence, the difference of the two models' margins
per start state (``margin_per_start_state``), clustered by scene. Over the ``copy_first_frame``
floor (the default) the floor is the simulator's own first frame in both runs, so the difference is
the two models' difference alone; over ``copy_first_frame_tokenized`` it also holds the difference
of the two tokenizers' floors.

Usage: .venv/bin/python -m roboscape.eval.paired BEFORE/eval.json AFTER/eval.json
       .venv/bin/python -m roboscape.eval.paired BEFORE/controllability.json AFTER/controllability.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from roboscape.data.heldout_episodes import SUBSETS
from roboscape.eval.world_model_eval import HIGHER_IS_BETTER
from roboscape.utils.stats import clustered_standard_error


def paired_difference(before: dict, after: dict, metric: str) -> dict:
    """``after``'s model minus ``before``'s on ``metric`` (psnr, ssim or perceptual), per clip, from
    two ``open_loop`` blocks of eval.json; positive where ``after`` is better."""
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown metric {metric!r}; choose one of {tuple(HIGHER_IS_BETTER)}")
    a, b = (block.get("per_clip") for block in (before, after))
    if a is None or b is None:
        raise ValueError("an eval.json without per-clip scores (made before they were kept): evaluate it again")
    if a["clip"] != b["clip"] or a["episode_seed"] != b["episode_seed"] or a["scene_id"] != b["scene_id"]:
        raise ValueError("the two models were evaluated on different clips: a paired comparison needs the same ones")
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    diff = sign * (np.asarray(b["model"][metric]) - np.asarray(a["model"][metric]))
    episodes = list(zip(a["scene_id"], a["episode_seed"], strict=True))
    return {
        "difference": float(diff.mean()),
        "standard_error": clustered_standard_error(diff, episodes),
        "clips": len(diff),
        "episodes": len(set(episodes)),
        "fraction_of_clips_better": float((diff > 0).mean()),
    }


def compare(before: dict, after: dict) -> dict:
    """Every subset and metric of two eval.json files (their ``open_loop`` blocks)."""
    return {
        subset: {
            m: paired_difference(before[subset]["open_loop"], after[subset]["open_loop"], m) for m in HIGHER_IS_BETTER
        }
        for subset in SUBSETS
    }


def compare_controllability(before: dict, after: dict, floor: str = "copy_first_frame") -> dict:
    """Per subset, action sequence and metric, ``after``'s margin over ``floor`` minus ``before``'s,
    per start state, from two controllability.json files run from the same start states; positive
    where ``after`` is better."""
    out: dict = {}
    for subset, b in before["subsets"].items():
        a = after["subsets"].get(subset)
        if a is None or a["start_states"] != b["start_states"]:
            raise ValueError(
                f"{subset}: the two runs started from different start states: a paired comparison needs the same ones"
            )
        scenes = [s["scene_id"] for s in b["start_states"]]
        out[subset] = {}
        for name, seq in b["sequences"].items():
            pair = (seq, a["sequences"].get(name, {}))
            per_state = [s.get("margin_per_start_state") for s in pair]
            if per_state[0] is None or per_state[1] is None:
                raise ValueError(
                    f"{subset}, {name}: a controllability.json without per-start-state margins (made before they "
                    "were kept): run controllability again"
                )
            out[subset][name] = {}
            for metric in HIGHER_IS_BETTER:  # the margins are signed already: positive is better
                diff = np.asarray(per_state[1][floor][metric]) - np.asarray(per_state[0][floor][metric])
                out[subset][name][metric] = {
                    "difference": float(diff.mean()),
                    "standard_error": clustered_standard_error(diff, scenes),
                    "start_states": len(diff),
                    "scenes": len(set(scenes)),
                    "fraction_better": float((diff > 0).mean()),
                }
    return out


def _print_controllability(result: dict, floor: str) -> None:
    print(f"| subset | sequence | metric | after - before over {floor} (positive: after is better) | start states |")
    print("| --- | --- | --- | --- | --- |")
    for subset, sequences in result.items():
        for name, metrics in sequences.items():
            for metric in ("perceptual", "psnr"):
                r = metrics[metric]
                se = "n/a" if r["standard_error"] is None else f"{r['standard_error']:.4f}"
                counts = f"{r['start_states']} ({r['scenes']} scenes)"
                print(f"| {subset} | {name} | {metric} | {r['difference']:+.4f} ± {se} | {counts} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", help="the first model's eval.json or controllability.json")
    ap.add_argument("after", help="the second model's (evaluated on the same clips, or from the same start states)")
    ap.add_argument(
        "--floor",
        default="copy_first_frame",
        choices=["copy_first_frame", "copy_first_frame_tokenized"],
        help="controllability: the floor whose margins are compared",
    )
    args = ap.parse_args()
    with open(args.before) as f, open(args.after) as g:
        before, after = json.load(f), json.load(g)
    if "sequences" in before:
        _print_controllability(compare_controllability(before, after, args.floor), args.floor)
        return
    result = compare(before, after)
    print("| subset | metric | after - before (positive: after is better) | clips (episodes) | clips better |")
    print("| --- | --- | --- | --- | --- |")
    for subset, metrics in result.items():
        for metric, r in metrics.items():
            se = "n/a" if r["standard_error"] is None else f"{r['standard_error']:.4f}"
            print(
                f"| {subset} | {metric} | {r['difference']:+.4f} ± {se} | {r['clips']} ({r['episodes']}) "
                f"| {r['fraction_of_clips_better']:.0%} |"
            )


if __name__ == "__main__":
    main()
