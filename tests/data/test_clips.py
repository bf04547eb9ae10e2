"""Clip cutting, the index, the streaming Dataset and bad-file errors, on small synthetic shards."""

from __future__ import annotations

import resource
import shutil

import numpy as np
import pytest
import torch

from roboscape.data.clips import (
    ClipConfig,
    check_clip_shard,
    clip_starts,
    cut_clips,
    frame_done,
    merge_indices,
)
from roboscape.data.dataset import ClipDataset
from roboscape.sim.trajectory_io import TrajectoryShard
from roboscape.utils.h5 import DataFileError, open_h5

from fakes import write_fake_shard


def test_clip_starts_cover_the_end():
    assert clip_starts(10, 4, 3) == [0, 3, 6]
    assert clip_starts(11, 4, 3) == [0, 3, 6, 7]
    assert clip_starts(4, 4, 1) == [0]
    assert clip_starts(3, 4, 1) == []


def test_frame_done_aligns_with_frames():
    done = frame_done(np.array([False, False, True]), initial_success=False)
    assert done.tolist() == [0.0, 0.0, 0.0, 1.0]


def test_cut_clips_counts_and_content(tmp_path):
    lengths = [12, 20, 5]
    traj = write_fake_shard(tmp_path / "traj.h5", lengths)
    cfg = ClipConfig(clip_length=6, stride=4)
    index, summary = cut_clips(traj, tmp_path / "clips.h5", cfg)
    expected = sum(len(clip_starts(T + 1, 6, 4)) for T in lengths)
    assert summary["clips"] == expected == len(index)
    assert summary["skipped_short_episodes"] == 0  # T=5 gives 6 frames: exactly one clip
    info = check_clip_shard(tmp_path / "clips.h5")
    assert info == {"clips": expected, "clip_length": 6, "views": ["third_view", "wrist"]}
    with TrajectoryShard(traj) as shard, open_h5(tmp_path / "clips.h5") as f:
        for row, r in index.iterrows():
            ep = shard.read(int(f["episode"][row]))
            s = int(r["start"])
            assert np.array_equal(f["rgb/third_view"][row], ep.rgb["third_view"][s : s + 6])
            assert np.array_equal(f["actions"][row], ep.actions[s : s + 5])
            assert np.array_equal(f["done"][row], frame_done(ep.success, False)[s : s + 6])
        assert f["done"][len(index) - 1][-1] == 1.0  # the last clip ends on the solved frames


def test_short_episodes_are_skipped_and_counted(tmp_path):
    traj = write_fake_shard(tmp_path / "traj.h5", [3, 10])
    index, summary = cut_clips(traj, tmp_path / "clips.h5", ClipConfig(clip_length=8, stride=8))
    assert summary["skipped_short_episodes"] == 1 and summary["clips"] == len(index) == 2


def test_index_and_dataset(tmp_path):
    parts = []
    for k in range(2):
        traj = write_fake_shard(tmp_path / f"traj{k}.h5", [10, 14], seed=k)
        idx, _ = cut_clips(traj, tmp_path / "clips" / f"shard_{k}.h5", ClipConfig(clip_length=5, stride=5))
        idx.to_csv(tmp_path / f"part{k}.csv", index=False)
        parts.append((tmp_path / f"part{k}.csv", tmp_path / "clips" / f"shard_{k}.h5"))
    index = merge_indices(parts, tmp_path / "clips" / "index.csv")
    assert index["clip_id"].tolist() == list(range(len(index)))
    ds = ClipDataset(tmp_path / "clips" / "index.csv", views=("third_view", "wrist"))
    assert len(ds) == len(index)
    item = ds[len(ds) - 1]
    assert item["rgb"]["third_view"].shape == (5, 16, 16, 3) and item["actions"].shape == (4, 7)
    assert item["done"].shape == (5,)
    assert len(ClipDataset(tmp_path / "clips" / "index.csv", split="ood")) < len(ds)


def test_dataset_streams_with_flat_memory(tmp_path):
    """Reading every clip of a dataset much larger than the growth bound keeps RSS flat."""
    traj = write_fake_shard(tmp_path / "traj.h5", [400] * 6, size=48)
    idx, _ = cut_clips(traj, tmp_path / "clips.h5", ClipConfig(clip_length=16, stride=1, compression=None))
    idx.to_csv(tmp_path / "part.csv", index=False)
    merge_indices([(tmp_path / "part.csv", tmp_path / "clips.h5")], tmp_path / "index.csv")
    ds = ClipDataset(tmp_path / "index.csv", views=("third_view", "wrist"))
    clip_bytes = 2 * 16 * 48 * 48 * 3
    total = len(ds) * clip_bytes
    assert total > 300e6  # the dataset itself is far larger than the allowed growth
    for i in range(200):  # warm up allocator and h5py caches
        ds[i]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for i in range(len(ds)):
        ds[i]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert after - before < 64e6, f"peak RSS grew by {(after - before) / 1e6:.0f} MB over {total / 1e6:.0f} MB of clips"


def test_truncated_and_corrupted_files_name_the_file(tmp_path):
    traj = write_fake_shard(tmp_path / "traj.h5", [10, 10])
    truncated = tmp_path / "truncated.h5"
    data = traj.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    shutil.copy(traj.with_suffix(".json"), truncated.with_suffix(".json"))
    with pytest.raises(DataFileError, match="truncated.h5"):
        with TrajectoryShard(truncated) as shard:
            shard.read(1)
    corrupted = tmp_path / "corrupted.h5"
    corrupted.write_bytes(b"\x00" * 512 + data[512:])
    shutil.copy(traj.with_suffix(".json"), corrupted.with_suffix(".json"))
    with pytest.raises(DataFileError, match="corrupted.h5"):
        TrajectoryShard(corrupted)
    with pytest.raises(DataFileError, match="missing"):
        cut_clips(tmp_path / "missing.h5", tmp_path / "out.h5", ClipConfig(clip_length=4, stride=4))
    # a clip shard corrupted after indexing fails with its name when the Dataset reads it
    idx, _ = cut_clips(traj, tmp_path / "clips.h5", ClipConfig(clip_length=4, stride=4))
    idx.to_csv(tmp_path / "part.csv", index=False)
    merge_indices([(tmp_path / "part.csv", tmp_path / "clips.h5")], tmp_path / "index.csv")
    (tmp_path / "clips.h5").write_bytes((tmp_path / "clips.h5").read_bytes()[:2000])
    with pytest.raises(DataFileError, match="clips.h5"):
        ClipDataset(tmp_path / "index.csv")[0]


def test_frame_dataset_reads_single_frames_in_model_range(tmp_path):
    from roboscape.data.frames import FrameDataset, to_model_range, to_uint8

    traj = write_fake_shard(tmp_path / "traj.h5", [10, 14])
    idx, _ = cut_clips(traj, tmp_path / "clips.h5", ClipConfig(clip_length=5, stride=5))
    idx.to_csv(tmp_path / "part.csv", index=False)
    merge_indices([(tmp_path / "part.csv", tmp_path / "clips.h5")], tmp_path / "index.csv")
    frames = FrameDataset(tmp_path / "index.csv", split=None, frame_stride=2)
    clips = ClipDataset(tmp_path / "index.csv", views=("third_view",))
    assert len(frames) == len(clips) * 3  # offsets 0, 2, 4 of 5-frame clips
    x = frames[4]  # clip 1, offset 2
    assert x.shape == (3, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(to_uint8(x), clips[1]["rgb"]["third_view"][2])
    u8 = torch.randint(0, 256, (2, 4, 4, 3), dtype=torch.uint8)
    assert torch.equal(to_uint8(to_model_range(u8)), u8)
