"""A closed-loop evaluation's records (:mod:`roboscape.eval.policy_eval`), and what is read from
them alone: the file of a shard's recorded frames, and the success rates with their intervals.

It imports no simulator, so that the rules that only read the records (``policy_results``,
``figure_rollouts``) start without ManiSkill, and their library inputs leave it out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from roboscape.utils.io import atomic_path
from roboscape.utils.stats import wilson_interval


def save_recorded(recorded: Mapping[tuple[str, int], np.ndarray], path: str | Path) -> None:
    """A shard's recorded episodes' frames, (domain, episode index) -> (T+1, H, W, 3) uint8, each
    under the key ``<domain>_episode_<index>``, exact (the GIF's palette is not)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **{f"{domain}_episode_{index}": frames for (domain, index), frames in recorded.items()})


def load_recorded(path: str | Path) -> dict[tuple[str, int], np.ndarray]:
    """What :func:`save_recorded` wrote: (domain, episode index) -> frames."""
    with np.load(path) as data:
        keys = {k: k.split("_episode_") for k in data.files}
        return {(domain, int(index)): data[k] for k, (domain, index) in keys.items()}


def _rate(rows: list[dict], key: str) -> dict:
    n, k = len(rows), sum(r[key] for r in rows)
    low, high = wilson_interval(k, n)
    return {"rate": k / n if n else None, "successes": k, "ci95": [low, high]}


def summarise(rows: list[dict]) -> dict:
    """Success rates (success_once and success_at_end, each with its 95% Wilson interval) per
    task x domain and per scene, with episode counts, seeds and failures by cause."""

    def block(rs: list[dict]) -> dict:
        failures = defaultdict(int)
        for r in rs:
            if r["failure"]:
                failures[r["failure"]] += 1
        return {
            "episodes": len(rs),
            "success_once": _rate(rs, "success_once"),
            "success_at_end": _rate(rs, "success_at_end"),
            "failures": dict(failures),
            "seeds": sorted(r["seed"] for r in rs),
        }

    cells, scenes = defaultdict(list), defaultdict(list)
    for r in rows:
        cells[f"{r['task']}/{r['domain']}"].append(r)
        scenes[r["scene_id"]].append(r)
    return {
        "cells": {k: block(v) for k, v in sorted(cells.items())},
        "scenes": {k: block(v) for k, v in sorted(scenes.items())},
    }
