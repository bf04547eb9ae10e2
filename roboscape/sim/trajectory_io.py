"""The trajectory file contract (HDF5 + JSON sidecar), following ManiSkill's layout where it fits.

One pair of files per (task, shard)::

    <shard>.h5
      traj_<i>/
        actions                         (T, 7)  float32  normalised pd_ee_delta_pose action:
                                                         dx dy dz (base frame), droll dpitch dyaw
                                                         (XYZ Euler, base-aligned), gripper (1 open, -1 closed)
        rewards                         (T,)    float32  rule-based normalised dense reward in [0, 1]
        success                         (T,)    bool     evaluate()["success"] after each step
        terminated, truncated           (T,)    bool     ManiSkill's episode flags
        obs/sensor_data/<view>/rgb      (T+1, H, W, 3) uint8, view in VIEWS
        obs/agent/qpos, obs/agent/qvel  (T+1, 9) float32
        obs/extra/tcp_pose              (T+1, 7) float32  world frame, [x y z qw qx qy qz]
        obs/extra/tcp_pose_base         (T+1, 7) float32  robot-base frame
        obs/extra/obj_pose              (T+1, 7) float32  world frame
        env_states/actors/<name>        (T+1, 13)          ManiSkill env state (replayable)
        env_states/articulations/<name> (T+1, 13 + 2 dof)

    <shard>.json
      {"env_info": {"env_id", "env_kwargs", "max_episode_steps"},
       "source_type": "motionplanning", "source_desc": str,
       "roboscape": {"format_version": 1, "task", "shard", "views", "image_size", "control_freq", ...},
       "episodes": [{"episode_id", "episode_seed", "control_mode", "elapsed_steps", "success",
                     "reset_kwargs": {"seed", "options": {"scene": {...}}},
                     "scene_id", "split", "instruction", "label": "optimal"|"suboptimal"|"exploratory",
                     "suboptimal_method", "explore_from" (exploratory: the control step its
                     exploration starts at), "attempts", "initial_success"}, ...]}
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from roboscape.utils.h5 import DataFileError, open_h5
from roboscape.utils.io import read_json

FORMAT_VERSION = 1
VIEWS = ("third_view", "wrist")
ACTION_DIM = 7
LABELS = ("optimal", "suboptimal", "exploratory")  # the kinds of trajectory (roboscape.sim.generator)
EXPLORATORY = "exploratory"


@dataclass
class Episode:
    """One recorded trajectory (all arrays in memory)."""

    actions: np.ndarray
    rewards: np.ndarray
    success: np.ndarray
    rgb: dict[str, np.ndarray]
    qpos: np.ndarray
    qvel: np.ndarray
    tcp_pose: np.ndarray
    tcp_pose_base: np.ndarray
    obj_pose: np.ndarray
    env_states: dict[str, dict[str, np.ndarray]]
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.actions)


def write_episode(f: h5py.File, episode_id: int, ep: Episode, compression: str | None = "gzip") -> None:
    g = f.create_group(f"traj_{episode_id}")
    T = len(ep.actions)
    g.create_dataset("actions", data=ep.actions.astype(np.float32))
    g.create_dataset("rewards", data=ep.rewards.astype(np.float32))
    g.create_dataset("success", data=ep.success.astype(bool))
    g.create_dataset("terminated", data=ep.success.astype(bool))
    trunc = np.zeros(T, dtype=bool)
    g.create_dataset("truncated", data=trunc)
    for view, frames in ep.rgb.items():
        h, w = frames.shape[1:3]
        g.create_dataset(
            f"obs/sensor_data/{view}/rgb",
            data=frames,
            dtype=np.uint8,
            chunks=(1, h, w, 3),
            compression=compression,
        )
    g.create_dataset("obs/agent/qpos", data=ep.qpos.astype(np.float32))
    g.create_dataset("obs/agent/qvel", data=ep.qvel.astype(np.float32))
    g.create_dataset("obs/extra/tcp_pose", data=ep.tcp_pose.astype(np.float32))
    g.create_dataset("obs/extra/tcp_pose_base", data=ep.tcp_pose_base.astype(np.float32))
    g.create_dataset("obs/extra/obj_pose", data=ep.obj_pose.astype(np.float32))
    for kind, items in ep.env_states.items():
        for name, arr in items.items():
            g.create_dataset(f"env_states/{kind}/{name}", data=arr.astype(np.float32))


def _check(cond: bool, path, reason: str) -> None:
    if not cond:
        raise DataFileError(path, reason)


class TrajectoryShard:
    """Read access to one shard's trajectories, validated against the contract."""

    def __init__(self, h5_path: str | os.PathLike, json_path: str | os.PathLike | None = None):
        self.h5_path = Path(h5_path)
        self.json_path = Path(json_path) if json_path else self.h5_path.with_suffix(".json")
        if not self.json_path.exists():
            raise DataFileError(self.json_path, "JSON sidecar does not exist")
        try:
            self.meta = read_json(self.json_path)
        except ValueError as err:
            raise DataFileError(self.json_path, str(err)) from err
        version = self.meta.get("roboscape", {}).get("format_version")
        _check(version == FORMAT_VERSION, self.json_path, f"format_version {version!r}, expected {FORMAT_VERSION}")
        self.episodes: list[dict] = self.meta["episodes"]
        self._f = open_h5(self.h5_path)
        for ep in self.episodes:
            key = f"traj_{ep['episode_id']}"
            _check(key in self._f, self.h5_path, f"group {key} listed in the JSON sidecar is missing")

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> TrajectoryShard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.episodes)

    def group(self, i: int) -> h5py.Group:
        return self._f[f"traj_{self.episodes[i]['episode_id']}"]

    def read(self, i: int, views: tuple[str, ...] = VIEWS) -> Episode:
        g = self.group(i)
        try:
            actions = g["actions"][()]
            T = len(actions)
            _check(actions.shape == (T, ACTION_DIM), self.h5_path, f"traj {i}: actions shape {actions.shape}")
            rgb = {v: g[f"obs/sensor_data/{v}/rgb"][()] for v in views}
            for v, frames in rgb.items():
                _check(
                    frames.shape[0] == T + 1,
                    self.h5_path,
                    f"traj {i}: {v} has {frames.shape[0]} frames for {T} actions",
                )
            env_states = {
                kind: {name: g[f"env_states/{kind}/{name}"][()] for name in g[f"env_states/{kind}"]}
                for kind in g["env_states"]
            }
            return Episode(
                actions=actions,
                rewards=g["rewards"][()],
                success=g["success"][()],
                rgb=rgb,
                qpos=g["obs/agent/qpos"][()],
                qvel=g["obs/agent/qvel"][()],
                tcp_pose=g["obs/extra/tcp_pose"][()],
                tcp_pose_base=g["obs/extra/tcp_pose_base"][()],
                obj_pose=g["obs/extra/obj_pose"][()],
                env_states=env_states,
                meta=self.episodes[i],
            )
        except (OSError, KeyError) as err:
            raise DataFileError(self.h5_path, f"traj {i} cannot be read ({err})") from err

    def __iter__(self) -> Iterator[Episode]:
        for i in range(len(self)):
            yield self.read(i)
