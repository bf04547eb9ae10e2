"""Training windows for the world models, read from the token shards (rule ``tokenize``).

Each item is ``frames`` frames of one clip, ``frame_skip`` recorded frames apart (one world-model
step is ``frame_skip`` control steps), starting at a multiple of ``start_stride``: an item is a
pure function of its index, so that a resumed training run sees exactly the data an
uninterrupted one would. Items::

    tokens        (T, h*w)  int64    tokenizer codes of frames s, s+k, .., s+(T-1)k
    actions       (T, 7)    float32  action of each world-model step, from each of those frames:
                                     the k control steps' end-effector deltas summed, the last
                                     gripper command (the last frame's action is zero when the
                                     clip ends there: it predicts nothing)
    done          (T,)      float32  done labels of those frames
    clock         (T,)      int64    each frame's world-model step in its episode, (e + s) // k + i for
                                     the clip's start e in the episode (what a model with an
                                     ``episode_clock`` is told)
    rewards       (T-1,)    float32  rule-based reward on reaching frames 1..T-1 of the window (the
                                     recorded reward of the last control step before each)
    instruction   int64              row of the clip's instruction in the instruction cache
                                     (-1 without a cache)

Subsets: ``train`` (in-domain clips, minus the held-out episodes), ``heldout`` (every
``heldout_every``-th in-domain episode: seen scenes, unseen trajectories) and ``ood`` (the
out-of-domain scenes). Selection is by episode, so overlapping clips never straddle the split.
``labels`` then keeps only the trajectories of those kinds (``optimal``, ``suboptimal``,
``exploratory``), and ``tasks`` those tasks': the split comes first, so every model holds out the
same episodes whichever kinds it reads. Exploratory recordings are split among themselves, apart
from the planner's: adding them leaves the planner trajectories' split as it was.

Like :class:`~roboscape.data.dataset.ClipDataset` it keeps only the index in memory and reads
rows on demand through :class:`~roboscape.sim.trajectory_io.OpenShards`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from roboscape.sim.trajectory_io import ACTION_DIM, EXPLORATORY
from roboscape.utils.h5 import DataFileError, OpenShards

SUBSETS = ("train", "heldout", "ood")


def skip_actions(actions: torch.Tensor, frame_skip: int) -> torch.Tensor:
    """Actions of consecutive control steps (..., S, 7) -> one per world-model step
    (..., S // frame_skip, 7): the end-effector deltas (translation, rotation) of the
    ``frame_skip`` steps summed, the gripper command of the last one. Left-over steps are dropped."""
    n = actions.shape[-2] // frame_skip
    groups = actions[..., : n * frame_skip, :].reshape(*actions.shape[:-2], n, frame_skip, actions.shape[-1])
    return torch.cat([groups[..., :-1].sum(-2), groups[..., -1, -1:]], dim=-1)


def select_clips(
    index: pd.DataFrame, subset: str, heldout_every: int, labels: Sequence[str] | None = None
) -> pd.DataFrame:
    """The rows of a clip/token index in ``subset`` whose trajectory label is one of ``labels``
    (all labels if None; see the module docstring)."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; choose one of {SUBSETS}")
    if heldout_every < 2:
        raise ValueError("heldout_every must be >= 2")
    if labels is not None:
        unknown = sorted(set(labels) - set(index["label"]))
        if unknown or not labels:
            raise ValueError(f"trajectory labels {unknown} are not in the index (it has {sorted(set(index['label']))})")
    if subset == "ood":
        rows = index[index["split"] == "ood"]
    else:
        ind = index[index["split"] == "ind"]
        heldout: set = set()
        exploratory = ind["label"] == EXPLORATORY
        for part in (ind[~exploratory], ind[exploratory]):  # each kind of recording split on its own
            episodes = sorted(set(zip(part["scene_id"], part["episode_seed"], strict=True)))
            heldout |= set(episodes[heldout_every // 2 :: heldout_every])
        in_heldout = [key in heldout for key in zip(ind["scene_id"], ind["episode_seed"], strict=True)]
        rows = ind[in_heldout if subset == "heldout" else [not h for h in in_heldout]]
    if labels is not None:  # after the split: every model holds out the same episodes
        rows = rows[rows["label"].isin(labels)]
    return rows.reset_index(drop=True)


@dataclass
class WorldModelData:
    """What a world model reads of the token shards: the token index, the held-out split, where
    training windows start, the instruction cache (text WM) and the kinds of trajectory."""

    token_index: str
    heldout_every: int = 5
    start_stride: int = 2
    instruction_cache: str | None = None  # the text WM's instruction states
    trajectory_labels: list[str] | None = None  # kinds of trajectory to read (optimal, ...); None: all


class TokenWindowDataset(Dataset):
    def __init__(
        self,
        index_path: str | Path,
        frames: int,
        subset: str = "train",
        heldout_every: int = 10,
        start_stride: int = 1,
        instructions: dict[str, int] | None = None,
        max_open_files: int = 8,
        frame_skip: int = 1,
        labels: Sequence[str] | None = None,
        tasks: Sequence[str] | None = None,
    ):
        self.index_path = Path(index_path)
        if not self.index_path.exists():
            raise FileNotFoundError(f"token index {self.index_path} does not exist")
        self.index = select_clips(pd.read_csv(self.index_path), subset, heldout_every, labels)
        if tasks is not None:
            self.index = self.index[self.index["task"].isin(tasks)].reset_index(drop=True)
        if len(self.index) == 0:
            kinds = "" if labels is None else f" with trajectory labels {list(labels)}"
            which = "" if tasks is None else f" of tasks {list(tasks)}"
            raise ValueError(f"no clips in {self.index_path} for subset {subset!r}{kinds}{which}")
        if start_stride < 1:
            raise ValueError("start_stride must be >= 1")
        if frame_skip < 1:
            raise ValueError("frame_skip must be >= 1")
        self.frames, self.frame_skip = frames, frame_skip
        self._file = OpenShards(self.index_path.parent, max_open_files)
        first = self._file(self.index["shard"].iloc[0])
        self.clip_length = int(first.attrs["clip_length"])
        self.codebook_size = int(first.attrs["codebook_size"])
        self.tokens_hw = int(first.attrs["tokens_hw"])
        span = (frames - 1) * frame_skip + 1
        if frames < 2 or span > self.clip_length:
            raise ValueError(
                f"windows of {frames} frames {frame_skip} apart do not fit clips of {self.clip_length} frames "
                f"(need frames >= 2 and (frames - 1) * frame_skip + 1 <= clip length)"
            )
        self.starts = np.arange(0, self.clip_length - span + 1, start_stride)
        self._shards = self.index["shard"].to_numpy()
        self._rows = self.index["row"].to_numpy()
        self._clip_starts = self.index["start"].to_numpy()  # each clip's first frame in its episode
        if instructions is None:
            self.instruction_rows = np.full(len(self.index), -1)
        else:
            unknown = set(self.index["instruction"]) - set(instructions)
            if unknown:
                raise ValueError(f"instructions missing from the cache: {sorted(unknown)[:3]}")
            self.instruction_rows = self.index["instruction"].map(instructions).to_numpy()

    def __len__(self) -> int:
        return len(self.index) * len(self.starts)

    @property
    def steps_per_clip(self) -> int:
        """World-model steps a whole clip holds after its first frame."""
        return (self.clip_length - 1) // self.frame_skip

    def clip_steps(self, clip: int) -> dict[str, torch.Tensor]:
        """The clip ``clip`` in world-model steps from its first frame: tokens (S+1, h*w) of frames
        0, k, .., Sk, actions (S, 7) per step (see :func:`skip_actions`), done (S+1,), clock (S+1,)."""
        c, k = self.clip(clip), self.frame_skip
        return {
            "tokens": c["tokens"][::k][: self.steps_per_clip + 1],
            "actions": skip_actions(c["actions"], k),
            "done": c["done"][::k][: self.steps_per_clip + 1],
            "clock": self.clock(clip, 0, self.steps_per_clip + 1),
        }

    def clock(self, clip: int, start: int, frames: int) -> torch.Tensor:
        """World-model steps in their episode of ``frames`` frames ``frame_skip`` apart from frame
        ``start`` of clip ``clip`` (the episode's recorded frame e counts as step e // frame_skip)."""
        first = (int(self._clip_starts[clip]) + start) // self.frame_skip
        return torch.arange(first, first + frames)

    def clip(self, clip: int) -> dict[str, torch.Tensor]:
        """The whole clip ``clip`` (row of the index) as recorded: tokens (L, h*w), actions (L-1, 7),
        done (L,), rewards (L-1,)."""
        rel, row = self._shards[clip], int(self._rows[clip])
        f = self._file(rel)
        try:
            tokens = torch.from_numpy(f["tokens"][row].astype(np.int64)).flatten(1)
            actions = torch.from_numpy(f["actions"][row])
            done = torch.from_numpy(f["done"][row])
            rewards = torch.from_numpy(f["rewards"][row])
        except (OSError, KeyError) as err:
            raise DataFileError(self.index_path.parent / rel, f"token row {row} cannot be read ({err})") from err
        return {"tokens": tokens, "actions": actions, "done": done, "rewards": rewards}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        clip, k = divmod(int(i), len(self.starts))
        s, T, skip = int(self.starts[k]), self.frames, self.frame_skip
        c = self.clip(clip)
        frames = slice(s, s + (T - 1) * skip + 1, skip)
        actions = torch.zeros(T, c["actions"].shape[-1])
        taken = skip_actions(c["actions"][s : s + T * skip], skip)
        actions[: len(taken)] = taken
        return {
            "tokens": c["tokens"][frames],
            "actions": actions,
            "done": c["done"][frames],
            "clock": self.clock(clip, s, T),
            "rewards": c["rewards"][s + skip - 1 : s + (T - 1) * skip : skip],
            "instruction": torch.tensor(int(self.instruction_rows[clip])),
        }

    def action_statistics(self) -> dict[str, list[float]]:
        """Per-dimension mean, std, min and max of every world-model step's action in the selected
        clips (steps of ``frame_skip`` control steps from each clip's first frame)."""
        actions = np.concatenate(
            [
                skip_actions(
                    torch.from_numpy(self._file(rel)["actions"][()][np.sort(self._rows[self._shards == rel])]),
                    self.frame_skip,
                )
                .reshape(-1, ACTION_DIM)
                .numpy()
                for rel in np.unique(self._shards)
            ]
        )
        std = np.maximum(actions.std(0), 1e-3)
        return {
            "action_mean": actions.mean(0).tolist(),
            "action_std": std.tolist(),
            "action_low": actions.min(0).tolist(),
            "action_high": actions.max(0).tolist(),
        }
