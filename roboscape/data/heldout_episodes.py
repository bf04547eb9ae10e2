"""The recorded attempts at the task no world model trained on, at the policy's rate: the held-out
in-domain episodes (the world models' split, :func:`roboscape.data.token_windows.select_clips`) and
the out-of-domain scenes' episodes, optimal and suboptimal (exploratory recordings do not attempt
the task), each with its frames every ``frame_skip`` control steps, its policy
actions and its rule-based rewards. Reward validity scores rewards along them; the controllability
check starts the simulator and the world model from their first states.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from roboscape.data.token_windows import select_clips, skip_actions
from roboscape.sim.trajectory_io import EXPLORATORY, TrajectoryShard

SUBSETS = ("heldout", "ood")


@dataclass
class Trajectory:
    """One recorded episode at the policy's rate."""

    subset: str
    scene_id: str
    episode_seed: int
    label: str
    solved: bool
    frames: np.ndarray  # (S+1, H, W, 3) uint8: frames 0, k, .., Sk (only frame 0 if read first_frame_only)
    actions: np.ndarray  # (S, 7): each policy step's action (skip_actions)
    rule: np.ndarray  # (S,): the rule-based reward on reaching frames 1..S


def load_trajectories(
    shards: Sequence[str | Path],
    token_index: str | Path,
    heldout_every: int,
    frame_skip: int,
    view: str,
    first_frame_only: bool = False,
) -> list[Trajectory]:
    """The held-out in-domain and the out-of-domain episodes of ``shards`` (the held-out split is
    the world models', read from their token index); ``first_frame_only`` reads only each
    episode's first frame (what starting a rollout needs; memory for every episode's frames is not)."""
    index = pd.read_csv(token_index)
    heldout = set(
        zip(*(select_clips(index, "heldout", heldout_every)[c] for c in ("scene_id", "episode_seed")), strict=True)
    )
    k, out = frame_skip, []
    for path in shards:
        with TrajectoryShard(path) as shard:
            for i, meta in enumerate(shard.episodes):
                if meta["label"] == EXPLORATORY:
                    continue
                if meta["split"] == "ood":
                    subset = "ood"
                elif (meta["scene_id"], meta["episode_seed"]) in heldout:
                    subset = "heldout"
                else:
                    continue
                g = shard.group(i)
                actions, rewards = g["actions"][()], g["rewards"][()]
                steps = len(actions) // k
                if steps < 1:
                    continue
                out.append(
                    Trajectory(
                        subset,
                        meta["scene_id"],
                        int(meta["episode_seed"]),
                        meta["label"],
                        bool(meta["success"]),
                        g[f"obs/sensor_data/{view}/rgb"][: 1 if first_frame_only else steps * k + 1 : k],
                        skip_actions(torch.from_numpy(actions), k).numpy(),
                        rewards[k - 1 : steps * k : k],
                    )
                )
    if not out:
        raise ValueError(f"no held-out or out-of-domain episode in {[str(p) for p in shards]}")
    return out
