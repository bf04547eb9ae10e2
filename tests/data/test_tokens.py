"""Token shards: overlapping clips' frames encoded once, the same codes as clip by clip, and the index."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from roboscape.data.clips import ClipConfig, clip_starts, cut_clips
from roboscape.data.frames import to_model_range
from roboscape.data.tokens import token_index, tokenize_clip_shard
from roboscape.models.tokenizer import Tokenizer, TokenizerConfig
from roboscape.utils.h5 import DataFileError, open_h5

from fakes import write_fake_shard


@dataclass
class _Config:
    image_size: int = 16
    codebook_size: int = 4096
    tokens_hw: int = 2


class CountingEncoder(nn.Module):
    """A deterministic stand-in for the tokenizer's encoder: each 8x8 patch's code is its pixels'
    sum modulo 4096, and every frame it encodes is counted."""

    def __init__(self):
        super().__init__()
        self.cfg = _Config()
        self.weight = nn.Parameter(torch.zeros(()))  # tokenizing reads the device from the parameters
        self.frames_seen = 0

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        self.frames_seen += len(frames)
        pixels = ((frames + 1) * 127.5).round().long().sum(1)  # (N, 16, 16)
        return pixels.unfold(1, 8, 8).unfold(2, 8, 8).sum((-1, -2)) % 4096


@pytest.fixture
def clip_shard(tmp_path):
    """Three episodes cut into overlapping clips (6 frames, a new clip every 4)."""
    lengths = [12, 20, 7]
    traj = write_fake_shard(tmp_path / "traj.h5", lengths)
    index, _ = cut_clips(traj, tmp_path / "clips.h5", ClipConfig(clip_length=6, stride=4))
    frames = sum(max(clip_starts(T + 1, 6, 4)) + 6 for T in lengths)  # each episode's frames the clips cover
    return tmp_path / "clips.h5", index, frames


@pytest.mark.parametrize("batch_frames", [6, 18, 256])
def test_overlapping_frames_are_encoded_once_with_the_same_codes(tmp_path, clip_shard, batch_frames):
    clips, index, frames = clip_shard
    once, every = CountingEncoder(), CountingEncoder()
    summary = tokenize_clip_shard(once, clips, tmp_path / "once.h5", batch_frames=batch_frames)
    tokenize_clip_shard(every, clips, tmp_path / "every.h5", batch_frames=batch_frames, dedupe=False)
    assert summary["clips"] == len(index)
    assert summary["frames"] == every.frames_seen == len(index) * 6
    assert summary["frames_encoded"] == once.frames_seen == frames < len(index) * 6
    with open_h5(tmp_path / "once.h5") as a, open_h5(tmp_path / "every.h5") as b, open_h5(clips) as src:
        assert np.array_equal(a["tokens"][()], b["tokens"][()])
        for row in range(len(index)):  # the codes are each clip's own frames' codes
            direct = once.encode(to_model_range(torch.from_numpy(src["rgb/third_view"][row])))
            assert np.array_equal(a["tokens"][row], direct.numpy())
        for name in ("actions", "rewards", "done"):
            assert np.array_equal(a[name][()], src[name][()])
        assert a["tokens"].dtype == np.int16
        assert dict(a.attrs)["clip_length"] == 6 and dict(a.attrs)["tokens_hw"] == 2


def test_a_real_tokenizer_gives_the_same_codes_once_as_clip_by_clip(tmp_path, clip_shard):
    clips, _, _ = clip_shard
    torch.manual_seed(0)
    tokenizer = Tokenizer(TokenizerConfig(image_size=16, base_channels=8, max_channel_mult=2))
    tokenize_clip_shard(tokenizer, clips, tmp_path / "once.h5")
    tokenize_clip_shard(tokenizer, clips, tmp_path / "every.h5", dedupe=False)
    with open_h5(tmp_path / "once.h5") as a, open_h5(tmp_path / "every.h5") as b:
        assert np.array_equal(a["tokens"][()], b["tokens"][()])


def test_wrong_view_or_size_is_an_error(tmp_path, clip_shard):
    clips, _, _ = clip_shard
    with pytest.raises(DataFileError, match="no view 'top'"):
        tokenize_clip_shard(CountingEncoder(), clips, tmp_path / "t.h5", view="top")
    wrong = CountingEncoder()
    wrong.cfg.image_size = 32
    with pytest.raises(ValueError, match="the tokenizer expects 32x32"):
        tokenize_clip_shard(wrong, clips, tmp_path / "t.h5")
    assert not (tmp_path / "t.h5").exists()


def test_token_index_points_at_the_token_shards(tmp_path, clip_shard):
    clips, index, _ = clip_shard
    index["shard"] = "clips.h5"
    index.to_csv(tmp_path / "index.csv", index=False)
    (tmp_path / "tokens").mkdir()
    tokenize_clip_shard(CountingEncoder(), clips, tmp_path / "tokens" / "shard.h5")
    out = token_index(
        tmp_path / "index.csv", {clips: tmp_path / "tokens" / "shard.h5"}, tmp_path / "tokens" / "index.csv"
    )
    assert (out["shard"] == "shard.h5").all()
    assert pd.read_csv(tmp_path / "tokens" / "index.csv").equals(out)
    with pytest.raises(ValueError, match="no token shard"):
        token_index(tmp_path / "index.csv", {}, tmp_path / "tokens" / "index2.csv")
