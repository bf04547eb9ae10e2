"""Atomic file output: a killed writer never leaves a partial file under the final name."""

from __future__ import annotations

import subprocess
import sys

from roboscape.utils.io import atomic_path


def test_atomic_path_leaves_nothing_under_the_final_name_when_killed(tmp_path):
    """A writer killed mid-write (SIGKILL: no cleanup runs) leaves at most a hidden .part file."""
    target = tmp_path / "shard.h5"
    script = f"""
import sys, time
from roboscape.utils.io import atomic_path
with atomic_path({str(target)!r}) as tmp:
    tmp.write_bytes(b"half of a shard")
    print("writing", flush=True)
    time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.kill()
    proc.wait()
    assert not target.exists()
    assert [p.name.startswith(".shard.h5.") and p.name.endswith(".part") for p in tmp_path.iterdir()] == [True]
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"a whole shard")
    assert target.read_bytes() == b"a whole shard"
