"""Replay fidelity: do the recorded actions, replayed open loop, solve the task again?

For each recorded episode, the scene is rebuilt, reset with the episode's seed and driven by
the recorded actions alone (same control mode, no planner, no feedback). The episode counts as
reproduced when the replay ends in success; the object's final position error against the
recording is reported too.

At the policy's rate (``frame_skip`` k > 1) the recorded actions are first grouped as a policy
would send them -- each k steps' deltas summed, the last gripper command -- and split back evenly
over the k control steps (:mod:`roboscape.sim.policy_env`): does that action space still solve the
tasks?
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from roboscape.sim.catalogue import SceneSpec, TaskParams
from roboscape.sim.env import make_env
from roboscape.sim.policy_io import group_actions, split_action
from roboscape.sim.trajectory_io import TrajectoryShard


def replay_shard(
    h5_path: str | Path, labels: tuple[str, ...] = ("optimal",), max_episodes: int | None = None, frame_skip: int = 1
) -> list[dict]:
    results = []
    with TrajectoryShard(h5_path) as shard:
        kw = shard.meta["env_info"]["env_kwargs"]
        task_params = TaskParams(**kw["task_params"])
        chosen = [i for i, e in enumerate(shard.episodes) if e["label"] in labels][:max_episodes]
        env = None
        current_scene = None
        try:
            for i in chosen:
                meta = shard.episodes[i]
                scene = SceneSpec.from_dict(meta["reset_kwargs"]["options"]["scene"])
                if env is None:
                    env = make_env(
                        scene,
                        image_size=kw["image_size"],
                        obs_mode="state",
                        task_params=task_params,
                        control_freq=kw["control_freq"],
                        sim_freq=kw["sim_freq"],
                        max_episode_steps=shard.meta["env_info"]["max_episode_steps"],
                    )
                    current_scene = scene
                elif scene != current_scene:
                    env.reset(seed=meta["episode_seed"], options={"reconfigure": True, "scene": scene})
                    current_scene = scene
                env.reset(seed=meta["episode_seed"])
                g = shard.group(i)
                actions = g["actions"][()]
                if frame_skip > 1:
                    actions = np.repeat(
                        [split_action(a, frame_skip) for a in group_actions(actions, frame_skip)], frame_skip, axis=0
                    )
                recorded_obj = g["obs/extra/obj_pose"][-1, :3]
                info = {}
                for a in actions:
                    _, _, _, _, info = env.step(a)
                final_obj = env.unwrapped.obj.pose.p[0].cpu().numpy()
                results.append(
                    dict(
                        scene_id=meta["scene_id"],
                        episode_id=meta["episode_id"],
                        label=meta["label"],
                        recorded_success=bool(meta["success"]),
                        replay_success=bool(torch.as_tensor(info["success"]).item()),
                        object_position_error_m=float(np.linalg.norm(final_obj - recorded_obj)),
                    )
                )
        finally:
            if env is not None:
                env.close()
    return results


def summarise(results: list[dict]) -> dict:
    by_task = defaultdict(list)
    for r in results:
        by_task[r["scene_id"].split("/")[0]].append(r)

    def stats(rs: list[dict]) -> dict:
        solved = [r for r in rs if r["recorded_success"]]
        errors = [r["object_position_error_m"] for r in rs]
        return {
            "episodes": len(rs),
            "replay_success_rate": round(sum(r["replay_success"] for r in solved) / len(solved), 4) if solved else None,
            "object_position_error_m": {
                "median": round(float(np.median(errors)), 5) if errors else None,
                "max": round(float(np.max(errors)), 5) if errors else None,
            },
        }

    return {
        "overall": stats(results),
        "by_task": {t: stats(rs) for t, rs in sorted(by_task.items())},
        "episodes": results,
    }
