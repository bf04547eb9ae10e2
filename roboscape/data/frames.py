"""Single frames from the clip shards, for training the per-frame tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from roboscape.data.dataset import ClipDataset


def to_model_range(frames_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1]."""
    return frames_uint8.movedim(-1, -3).float() / 127.5 - 1.0


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """float (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3)."""
    return ((frames.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).movedim(-3, -1)


class FrameDataset(Dataset):
    """Every ``frame_stride``-th frame of every clip of a split, in [-1, 1], shape (3, H, W).

    Overlapping clips repeat frames; a stride equal to the clips' stride visits each frame of
    an episode about once."""

    def __init__(
        self,
        index_path: str | Path,
        view: str = "third_view",
        split: str | None = "ind",
        tasks: list[str] | None = None,
        frame_stride: int = 1,
    ):
        self.clips = ClipDataset(index_path, views=(view,), split=split, tasks=tasks)
        self.view = view
        self.offsets = np.arange(0, self.clips.clip_length, frame_stride)

    def __len__(self) -> int:
        return len(self.clips) * len(self.offsets)

    def _frame(self, clip: int, t: int) -> torch.Tensor:
        return to_model_range(torch.from_numpy(self.clips.frame(clip, t, self.view)))

    def __getitem__(self, i: int) -> torch.Tensor:
        c, k = divmod(i, len(self.offsets))
        return self._frame(c, int(self.offsets[k]))


class ContextFrameDataset(FrameDataset):
    """The frames of :class:`FrameDataset`, each with a context frame: an earlier (or the same)
    frame of its clip, as a rollout decodes its frames with the real frame it started from.

    Items are dicts ``{"frames": (3, H, W), "context": (3, H, W)}``. Which earlier frame is a
    function of the item's index and ``seed`` alone, so that an epoch is reproducible and a
    resumed run reads what an uninterrupted one would."""

    def __init__(
        self,
        index_path: str | Path,
        view: str = "third_view",
        split: str | None = "ind",
        tasks: list[str] | None = None,
        frame_stride: int = 1,
        seed: int = 0,
    ):
        super().__init__(index_path, view, split, tasks, frame_stride)
        self.seed = seed

    def context_offset(self, i: int) -> int:
        t = int(self.offsets[i % len(self.offsets)])
        return int(np.random.default_rng([self.seed, i]).integers(0, t + 1))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "frames": super().__getitem__(i),
            "context": self._frame(i // len(self.offsets), self.context_offset(i)),
        }
