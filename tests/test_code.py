"""The code itself: imports go one way (the import-linter contract in pyproject.toml), and it is
formatted and linted by ruff with the line length pyproject.toml enforces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from snakemake_helpers import REPO

BIN = Path(sys.executable).parent


def test_imports_go_one_way():
    proc = subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_is_clean(command):
    proc = subprocess.run([str(BIN / "ruff"), *command, "."], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
