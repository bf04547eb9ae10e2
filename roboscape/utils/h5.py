"""HDF5 shards: opening them with errors that name the file, and a small cache of open handles
for random reads (trajectory, clip and token shards all use these)."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import h5py


class DataFileError(RuntimeError):
    """A trajectory, clip or token file that is missing, truncated, corrupted or off-contract."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)


def open_h5(path: str | os.PathLike, mode: str = "r", **kwargs) -> h5py.File:
    """Open an HDF5 file, turning h5py's low-level failures into an error naming the file."""
    path = Path(path)
    if mode == "r" and not path.exists():
        raise DataFileError(path, "file does not exist")
    try:
        return h5py.File(path, mode, **kwargs)
    except OSError as err:
        raise DataFileError(path, f"cannot be read as HDF5, truncated or corrupted? ({err})") from err


class OpenShards:
    """A few HDF5 shards under ``root`` kept open for random reads (least recently used closed
    first), with h5py's chunk cache limited to a few clips: reads are random, caching more only
    costs memory. Handles belong to one process: a pickled copy (a DataLoader worker) starts empty."""

    def __init__(self, root: str | os.PathLike, max_open: int = 8, chunk_cache_bytes: int = 4 * 1024 * 1024):
        self.root, self.max_open, self.chunk_cache_bytes = Path(root), max_open, chunk_cache_bytes
        self._files: OrderedDict[str, h5py.File] = OrderedDict()

    def __call__(self, rel: str) -> h5py.File:
        f = self._files.get(rel)
        if f is None:
            f = open_h5(self.root / rel, rdcc_nbytes=self.chunk_cache_bytes)
            self._files[rel] = f
            if len(self._files) > self.max_open:
                self._files.popitem(last=False)[1].close()
        else:
            self._files.move_to_end(rel)
        return f

    def close(self) -> None:
        while self._files:
            self._files.popitem()[1].close()

    def __getstate__(self):
        return {**self.__dict__, "_files": OrderedDict()}
