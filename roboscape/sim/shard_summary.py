"""The data stage's totals: every trajectory job's ``summary.json`` (:mod:`roboscape.sim.shard`)
added up -- trajectories asked for and kept by kind, failed attempts by cause, the kept ones whose
plans the sampling planner gave (``roboscape.sim.planner``), frames, and the throughput per process.

It imports no simulator, so that the rule ``trajectory_summary`` starts without ManiSkill and MPLib.
"""

from __future__ import annotations

from collections import Counter


def merge_summaries(summaries: list[dict]) -> dict:
    """Totals over shard summaries."""
    kept: Counter = Counter()
    requested: Counter = Counter()
    failures: Counter = Counter()
    seconds = 0.0
    for s in summaries:
        kept.update(s["kept"])
        requested.update(s["requested"])
        failures.update(s["failed_attempts_by_cause"])
        seconds += s["seconds"]
    n = sum(kept.values())
    return {
        "shards": len(summaries),
        "requested": dict(requested),
        "kept": dict(kept),
        "kept_successful": sum(s["kept_successful"] for s in summaries),
        # kept trajectories with a path from RRTConnect: the ones another run may not reproduce
        "kept_with_sampled_plans": sum(s["kept_with_sampled_plans"] for s in summaries),
        "failed_attempts_by_cause": dict(sorted(failures.items())),
        "frames": sum(s["frames"] for s in summaries),
        "job_seconds": round(seconds, 2),
        "trajectories_per_minute_per_process": round(60 * n / seconds, 3) if seconds > 0 else None,
    }
