"""Two world models on the same held-out clips, compared paired: what changed between a "before"
and an "after" (issue #27 §3 asks that the open-loop margins of eval_wm must not get worse).

Each model's margin over the copy floor carries its own standard error, but two models evaluated on
the same clips share each clip's difficulty: the difference of the two margins is then far less
uncertain than their standard errors suggest. This takes each clip's score over the horizon from two
``eval.json`` files (``open_loop.per_clip``, :mod:`roboscape.eval.world_model_eval`) and gives the
mean per-clip difference, signed so that positive means "after" is better, with its standard error
clustered by episode (clips of one episode overlap) and the share of clips where "after" is better.

Usage: .venv/bin/python -m roboscape.eval.paired BEFORE/eval.json AFTER/eval.json
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", help="the first model's eval.json")
    ap.add_argument("after", help="the second model's eval.json (evaluated on the same clips)")
    args = ap.parse_args()
    with open(args.before) as f, open(args.after) as g:
        result = compare(json.load(f), json.load(g))
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
