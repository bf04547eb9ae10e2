"""One trajectory job: every selected scene of one (task, shard), written as HDF5 + JSON + summary.

The per-shard summary (``summary.json``) counts what was asked, what was kept and every
failed attempt by cause; failures never crash the job. The data stage's totals over every shard's
summary are :func:`roboscape.sim.shard_summary.merge_summaries`.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from roboscape.sim.catalogue import TASK_ENV_IDS, Catalogue
from roboscape.sim.env import env_kwargs
from roboscape.sim.generator import GeneratorConfig, TrajectoryGenerator, shard_scene_ids
from roboscape.sim.trajectory_io import FORMAT_VERSION, LABELS, VIEWS, write_episode
from roboscape.utils.h5 import open_h5
from roboscape.utils.io import atomic_path, write_json


def generate_shard(
    catalogue: Catalogue,
    task: str,
    shard: int,
    scenes_per_shard: int,
    cfg: GeneratorConfig,
    h5_path: str | Path,
    json_path: str | Path,
    summary_path: str | Path,
    compression: str | None = "gzip",
    progress: bool = True,
) -> dict:
    scene_ids = shard_scene_ids(catalogue, task, shard, scenes_per_shard)
    scenes = [catalogue.scene(s) for s in scene_ids]
    jobs = [(sc, label, i) for sc in scenes for label in LABELS for i in range(cfg.count(label))]
    failures: Counter = Counter()
    kept = Counter()
    episodes_meta = []
    t0 = time.perf_counter()
    gen = TrajectoryGenerator(scenes[0], cfg, catalogue.task_params)
    try:
        with atomic_path(h5_path) as tmp_h5:
            f = open_h5(tmp_h5, "w")
            with f:
                bar = tqdm(jobs, desc=f"{task} shard {shard}", unit="traj", disable=not progress, mininterval=2.0)
                for scene, label, index in bar:
                    ep = gen.episode(scene, label, index, failures)
                    if ep is None:
                        continue
                    episode_id = len(episodes_meta)
                    write_episode(f, episode_id, ep, compression=compression)
                    episodes_meta.append({"episode_id": episode_id, **ep.meta})
                    kept[label] += 1
                    bar.set_postfix(kept=sum(kept.values()), failed=sum(failures.values()))
            sidecar = {
                "env_info": {
                    "env_id": TASK_ENV_IDS[task],
                    "env_kwargs": env_kwargs(
                        cfg.image_size,
                        "rgb",
                        catalogue.task_params,
                        cfg.control_freq,
                        cfg.sim_freq,
                        cfg.robot_visual_detail,
                        cfg.shader,
                    ),
                    "max_episode_steps": cfg.env_max_episode_steps,
                },
                "source_type": "motionplanning",
                "source_desc": "roboscape MPLib planner executed in pd_ee_delta_pose "
                "(optimal and suboptimal, paper sec. 4.1; exploratory: a planner prefix, then exploratory actions)",
                "roboscape": {
                    "format_version": FORMAT_VERSION,
                    "task": task,
                    "shard": shard,
                    "views": list(VIEWS),
                    "image_size": cfg.image_size,
                    "control_freq": cfg.control_freq,
                    "robot_visual_detail": cfg.robot_visual_detail,
                    "generator": dataclasses.asdict(cfg),
                },
                "episodes": episodes_meta,
            }
            write_json(json_path, sidecar)
    finally:
        gen.close()
    elapsed = time.perf_counter() - t0
    summary = {
        "task": task,
        "shard": shard,
        "scenes": scene_ids,
        "requested": {label: cfg.count(label) * len(scenes) for label in LABELS},
        "kept": dict(kept),
        "kept_successful": sum(1 for e in episodes_meta if e["success"]),
        "kept_with_sampled_plans": sum(1 for e in episodes_meta if e["sampled_plans"]),
        "failed_attempts_by_cause": dict(sorted(failures.items())),
        "frames": sum(e["elapsed_steps"] + 1 for e in episodes_meta),
        "seconds": round(elapsed, 2),
        "seconds_by_stage": {k: round(v, 2) for k, v in gen.timings.items()},
        "trajectories_per_minute": round(60 * len(episodes_meta) / elapsed, 3) if elapsed > 0 else None,
    }
    write_json(summary_path, summary)
    return summary
