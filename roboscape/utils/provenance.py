"""Digests recorded in training signatures -- of the source files a job depends on and of the
weights it starts from: checkpoints written by other code, or from other weights, are never
resumed as if they were this run's."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path


def source_digest(paths: Iterable[str | Path]) -> str:
    """sha256 over the contents of the ``.py`` files among ``paths`` (in sorted order)."""
    h = hashlib.sha256()
    for path in sorted({Path(p).resolve() for p in paths if str(p).endswith(".py")}):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    """sha256 over one file's contents (e.g. the weights a fine-tuning job starts from)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def git_commit(path: str | Path) -> str:
    """The short commit of the git checkout holding ``path``, with ``-dirty`` when tracked files
    differ from it; ``unknown`` outside a checkout."""
    run = lambda *args: subprocess.run(["git", *args], cwd=path, capture_output=True, text=True)  # noqa: E731
    head = run("rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        return "unknown"
    dirty = run("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")
