"""What a job records of the code and weights it ran with."""

import shutil
import subprocess

import pytest

from roboscape.utils.provenance import file_digest, git_commit, source_digest


def test_digests_change_with_the_contents(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 2\n")
    before, weights = source_digest([a, b, tmp_path / "notes.txt"]), file_digest(a)
    a.write_text("x = 3\n")
    assert source_digest([b, a]) != before and file_digest(a) != weights


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_commit_is_the_checkouts_and_says_when_it_was_edited(tmp_path):
    assert git_commit(tmp_path) == "unknown"
    git = lambda *args: subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / "f.py").write_text("x = 1\n")
    git("add", "f.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, capture_output=True, text=True)
    assert git_commit(tmp_path) == head.stdout.strip()
    (tmp_path / "f.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == head.stdout.strip() + "-dirty"
