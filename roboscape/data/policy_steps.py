"""The planner's trajectories at the policy's rate: what supervised fine-tuning clones (rule ``sft``).

One item per policy step of a recorded episode: the observation the policy would have seen there
(:mod:`roboscape.sim.policy_env`'s keys: the frame, the frame one policy step earlier, the
instruction's embedding) and the policy action that reproduces the recording -- the next
``frame_skip`` recorded actions grouped (deltas summed, the last gripper command;
:func:`roboscape.sim.policy_io.group_actions`). Frames are read from the trajectory shards on
demand, so memory holds only the index, whatever the number of episodes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from roboscape.sim.policy_io import group_actions
from roboscape.sim.trajectory_io import TrajectoryShard
from roboscape.utils.h5 import OpenShards


class PolicySteps(Dataset):
    """Items ``{"obs": {"rgb", "prev_rgb": uint8 (H, W, 3), "instruction": float32 (D,)}, "action": (7,)}``
    of the episodes in ``shards`` whose scene is in ``scene_ids`` and label in ``labels``."""

    def __init__(
        self,
        shards: Sequence[str | Path],
        scene_ids: Sequence[str],
        labels: Sequence[str],
        frame_skip: int,
        instructions: Mapping[str, np.ndarray],
        view: str = "third_view",
    ):
        self.view, self.instructions = view, {k: np.asarray(v, dtype=np.float32) for k, v in instructions.items()}
        self.shards = [str(Path(s).resolve()) for s in shards]
        wanted, rows, actions = set(scene_ids), [], []
        self.episodes: list[dict] = []
        for s, path in enumerate(self.shards):
            with TrajectoryShard(path) as shard:
                for i, meta in enumerate(shard.episodes):
                    if meta["scene_id"] not in wanted or meta["label"] not in labels:
                        continue
                    if meta["instruction"] not in self.instructions:
                        raise KeyError(f"no instruction embedding for {meta['instruction']!r}")
                    grouped = group_actions(shard.group(i)["actions"][()], frame_skip)
                    e = len(self.episodes)
                    self.episodes.append(
                        {
                            "shard": s,
                            "group": f"traj_{meta['episode_id']}",
                            "instruction": meta["instruction"],
                            "scene_id": meta["scene_id"],
                            "label": meta["label"],
                        }
                    )
                    # step j sees frame j*k and frame (j-1)*k (the first: itself, as after a reset)
                    rows += [(e, j * frame_skip, max(j - 1, 0) * frame_skip) for j in range(len(grouped))]
                    actions.append(grouped)
        if not rows:
            raise ValueError(
                f"no {list(labels)} episodes of scenes {sorted(wanted)} in {len(self.shards)} trajectory shards"
            )
        self.rows = np.asarray(rows, dtype=np.int64)
        self.actions = torch.from_numpy(np.concatenate(actions))
        root = os.path.commonpath([os.path.dirname(s) for s in self.shards])
        self._relative = [os.path.relpath(s, root) for s in self.shards]
        self._files = OpenShards(root)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        e, t, prev = (int(v) for v in self.rows[i])
        episode = self.episodes[e]
        frames = self._files(self._relative[episode["shard"]])[f"{episode['group']}/obs/sensor_data/{self.view}/rgb"]
        return {
            "obs": {
                "rgb": torch.from_numpy(frames[t]),
                "prev_rgb": torch.from_numpy(frames[prev]),
                "instruction": torch.from_numpy(self.instructions[episode["instruction"]]),
            },
            "action": self.actions[i],
        }

    def action_statistics(self) -> dict[str, list[float]]:
        """Per-dimension mean and std of the policy actions (the policy standardises with them)."""
        std = torch.clamp(self.actions.std(0), min=1e-3)
        return {"action_mean": self.actions.mean(0).tolist(), "action_std": std.tolist()}

    def action_quantiles(self) -> dict[str, list[float]]:
        """Per-dimension 1st and 99th percentiles of the policy actions (OpenVLA's action bins span them)."""
        q = torch.quantile(self.actions.double(), torch.tensor([0.01, 0.99], dtype=torch.float64), dim=0)
        return {"action_q01": q[0].tolist(), "action_q99": q[1].tolist()}
