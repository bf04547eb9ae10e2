"""A digest of the source files a job depends on, recorded in training signatures: checkpoints
written by other code are never resumed as if they were this code's."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def source_digest(paths: Iterable[str | Path]) -> str:
    """sha256 over the contents of the ``.py`` files among ``paths`` (in sorted order)."""
    h = hashlib.sha256()
    for path in sorted({Path(p).resolve() for p in paths if str(p).endswith(".py")}):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
