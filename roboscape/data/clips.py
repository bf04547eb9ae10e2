"""Fixed-length clips with done labels, cut from trajectory shards into compressed HDF5 shards.

Clip shard contract (``clips/<task>/shard_<k>.h5``)::

    rgb/<view>   (N, L, H, W, 3) uint8    chunks of one clip, gzip
    actions      (N, L-1, 7)    float32   action taken between frame t and t+1
    rewards      (N, L-1)       float32   rule-based reward of those actions
    done         (N, L)         float32   1 where the task is solved at that frame (evaluate())
    episode      (N,)           int32     episode_id in the source trajectory shard
    start        (N,)           int32     first frame of the clip in the episode
    attrs: clip_length, stride, fps, views, source (trajectory shard path), format_version

Clip index (``clips/index.csv``, one row per clip): ``clip_id, shard, row, task, scene_id,
split, label, instruction, episode_seed, start`` -- ``shard`` relative to the index file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from roboscape.sim.trajectory_io import ACTION_DIM, TrajectoryShard
from roboscape.utils.h5 import DataFileError, open_h5
from roboscape.utils.io import atomic_path

CLIP_FORMAT_VERSION = 1
INDEX_COLUMNS = [
    "clip_id",
    "shard",
    "row",
    "task",
    "scene_id",
    "split",
    "label",
    "instruction",
    "episode_seed",
    "start",
]


@dataclass(frozen=True)
class ClipConfig:
    clip_length: int = 28
    stride: int = 14
    fps: int = 25
    views: tuple[str, ...] = ("third_view", "wrist")
    compression: str | None = "gzip"

    def __post_init__(self):
        if self.clip_length < 2:
            raise ValueError(f"clip_length must be >= 2, got {self.clip_length}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")


def clip_starts(n_frames: int, clip_length: int, stride: int) -> list[int]:
    """Start frames of the clips cut from an episode of ``n_frames`` frames.

    Windows advance by ``stride``; a last window is aligned to the episode's end so that the
    final (usually 'done') frames are always covered. Episodes shorter than a clip give none."""
    if n_frames < clip_length:
        return []
    starts = list(range(0, n_frames - clip_length + 1, stride))
    if starts[-1] != n_frames - clip_length:
        starts.append(n_frames - clip_length)
    return starts


def frame_done(success: np.ndarray, initial_success: bool) -> np.ndarray:
    """Per-frame done labels (T+1) from the per-step success flags (T)."""
    return np.concatenate([[float(initial_success)], success.astype(np.float32)])


def cut_clips(traj_h5: str | Path, out_h5: str | Path, cfg: ClipConfig) -> tuple[pd.DataFrame, dict]:
    """Cut one trajectory shard into one clip shard; returns its index rows and a summary."""
    out_h5 = Path(out_h5)
    rows = []
    skipped_short = 0
    with TrajectoryShard(traj_h5) as shard:
        task = shard.meta["roboscape"]["task"]
        image_size = shard.meta["roboscape"]["image_size"]
        L = cfg.clip_length
        with atomic_path(out_h5) as tmp:
            with open_h5(tmp, "w") as f:
                f.attrs.update(
                    clip_length=L,
                    stride=cfg.stride,
                    fps=cfg.fps,
                    views=list(cfg.views),
                    source=str(traj_h5),
                    format_version=CLIP_FORMAT_VERSION,
                    task=task,
                )
                rgb = {
                    v: f.create_dataset(
                        f"rgb/{v}",
                        shape=(0, L, image_size, image_size, 3),
                        maxshape=(None, L, image_size, image_size, 3),
                        dtype=np.uint8,
                        chunks=(1, L, image_size, image_size, 3),
                        compression=cfg.compression,
                    )
                    for v in cfg.views
                }
                actions = f.create_dataset(
                    "actions",
                    shape=(0, L - 1, ACTION_DIM),
                    maxshape=(None, L - 1, ACTION_DIM),
                    dtype=np.float32,
                    chunks=(64, L - 1, ACTION_DIM),
                )
                rewards = f.create_dataset(
                    "rewards", shape=(0, L - 1), maxshape=(None, L - 1), dtype=np.float32, chunks=(256, L - 1)
                )
                done = f.create_dataset("done", shape=(0, L), maxshape=(None, L), dtype=np.float32, chunks=(256, L))
                episode = f.create_dataset("episode", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(1024,))
                start = f.create_dataset("start", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(1024,))
                n = 0
                for i in range(len(shard)):
                    ep = shard.read(i, views=cfg.views)
                    meta = ep.meta
                    starts = clip_starts(len(ep) + 1, L, cfg.stride)
                    if not starts:
                        skipped_short += 1
                        continue
                    labels = frame_done(ep.success, meta.get("initial_success", False))
                    k = len(starts)
                    for ds in (*rgb.values(), actions, rewards, done, episode, start):
                        ds.resize(n + k, axis=0)
                    for j, s in enumerate(starts):
                        for v in cfg.views:
                            rgb[v][n + j] = ep.rgb[v][s : s + L]
                        actions[n + j] = ep.actions[s : s + L - 1]
                        rewards[n + j] = ep.rewards[s : s + L - 1]
                        done[n + j] = labels[s : s + L]
                    episode[n : n + k] = meta["episode_id"]
                    start[n : n + k] = starts
                    for j, s in enumerate(starts):
                        rows.append(
                            dict(
                                shard=out_h5.name,
                                row=n + j,
                                task=task,
                                scene_id=meta["scene_id"],
                                split=meta["split"],
                                label=meta["label"],
                                instruction=meta["instruction"],
                                episode_seed=meta["episode_seed"],
                                start=s,
                            )
                        )
                    n += k
    index = pd.DataFrame(rows, columns=[c for c in INDEX_COLUMNS if c != "clip_id"])
    summary = {"source": str(traj_h5), "clips": n, "episodes": len(shard), "skipped_short_episodes": skipped_short}
    return index, summary


def merge_indices(parts: list[tuple[str | os.PathLike, str | os.PathLike]], index_path: str | Path) -> pd.DataFrame:
    """Concatenate per-shard index parts ``(part_csv, clip_shard_h5)`` into one index with
    global clip ids and shard paths relative to the index file."""
    index_path = Path(index_path)
    frames = []
    for part_csv, shard_h5 in parts:
        df = pd.read_csv(part_csv)
        df["shard"] = os.path.relpath(Path(shard_h5).resolve(), index_path.parent.resolve())
        frames.append(df)
    index = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=INDEX_COLUMNS[1:])
    index.insert(0, "clip_id", np.arange(len(index)))
    with atomic_path(index_path) as tmp:
        index.to_csv(tmp, index=False)
    return index


def check_clip_shard(path: str | Path) -> dict:
    """Open a clip shard and check its contract; raises DataFileError naming the file."""
    with open_h5(path) as f:
        if f.attrs.get("format_version") != CLIP_FORMAT_VERSION:
            raise DataFileError(path, f"clip format_version {f.attrs.get('format_version')!r}")
        n = f["done"].shape[0]
        for v in f.attrs["views"]:
            if f[f"rgb/{v}"].shape[0] != n:
                raise DataFileError(path, f"rgb/{v} has {f[f'rgb/{v}'].shape[0]} clips, done has {n}")
        return {"clips": n, "clip_length": int(f.attrs["clip_length"]), "views": list(f.attrs["views"])}
