"""Frames for the tokenizer: single frames in the model's range, and frames paired with a context frame."""

from __future__ import annotations

import torch

from roboscape.data.frames import ContextFrameDataset, FrameDataset

from fakes import fake_clip_index


def test_context_frames_are_earlier_frames_of_the_same_clip(tmp_path):
    index = fake_clip_index(tmp_path)
    plain, paired = FrameDataset(index), ContextFrameDataset(index, seed=3)
    assert len(plain) == len(paired) == 4 * 5
    offsets = []
    for i in range(len(paired)):
        item, clip, t = paired[i], i // 5, i % 5
        offsets.append(paired.context_offset(i))
        assert torch.equal(item["frames"], plain[i]) and 0 <= offsets[-1] <= t
        assert torch.equal(item["context"], plain[clip * 5 + offsets[-1]])
    assert offsets == [ContextFrameDataset(index, seed=3).context_offset(i) for i in range(len(paired))]
    assert len(set(offsets)) > 1
