"""A torch Dataset that streams clips from the clip shards, one clip per item.

Nothing but the index lives in memory: each item is read from its shard on demand, with a
small per-worker cache of open file handles and h5py's chunk cache limited to a few clips, so
memory stays flat however large the dataset is. Safe with ``DataLoader(num_workers > 0)``:
file handles are opened lazily in each worker.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from roboscape.utils.h5 import DataFileError, OpenShards


class ClipDataset(Dataset):
    """Items: ``{"rgb": {view: uint8 (L, H, W, 3)}, "actions": (L-1, 7), "done": (L,),
    "rewards": (L-1,), "clip_id": int, "instruction": str, "task": str, "split": str}``."""

    def __init__(
        self,
        index_path: str | Path,
        views: tuple[str, ...] = ("third_view",),
        split: str | None = None,
        tasks: list[str] | None = None,
        max_open_files: int = 8,
    ):
        self.index_path = Path(index_path)
        if not self.index_path.exists():
            raise FileNotFoundError(f"clip index {self.index_path} does not exist")
        index = pd.read_csv(self.index_path)
        if split is not None:
            index = index[index["split"] == split]
        if tasks is not None:
            index = index[index["task"].isin(tasks)]
        self.index = index.reset_index(drop=True)
        self.views = tuple(views)
        # Plain numpy columns: cheap to pickle into workers, no per-item pandas overhead.
        self._shards = self.index["shard"].to_numpy()
        self._rows = self.index["row"].to_numpy()
        self._file = OpenShards(self.index_path.parent, max_open_files)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        rel, row = self._shards[i], int(self._rows[i])
        f = self._file(rel)
        try:
            item = {
                "rgb": {v: torch.from_numpy(np.asarray(f[f"rgb/{v}"][row])) for v in self.views},
                "actions": torch.from_numpy(f["actions"][row]),
                "rewards": torch.from_numpy(f["rewards"][row]),
                "done": torch.from_numpy(f["done"][row]),
            }
        except (OSError, KeyError) as err:
            raise DataFileError(self.index_path.parent / rel, f"clip row {row} cannot be read ({err})") from err
        meta = self.index.iloc[i]
        item.update(
            clip_id=int(meta["clip_id"]),
            instruction=str(meta["instruction"]),
            task=str(meta["task"]),
            split=str(meta["split"]),
        )
        return item

    @property
    def clip_length(self) -> int:
        if len(self) == 0:
            raise ValueError(f"no clips in {self.index_path} for this selection")
        return int(self._file(self._shards[0]).attrs["clip_length"])

    def frame(self, i: int, t: int, view: str) -> np.ndarray:
        """Frame ``t`` (H, W, 3) uint8 of clip ``i``, without reading the rest of the item."""
        rel, row = self._shards[i], int(self._rows[i])
        try:
            return np.asarray(self._file(rel)[f"rgb/{view}"][row, t])
        except (OSError, KeyError) as err:
            raise DataFileError(self.index_path.parent / rel, f"clip row {row} cannot be read ({err})") from err

    def close(self) -> None:
        self._file.close()
