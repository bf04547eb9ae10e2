"""Running Snakemake from tests and reading what it plans."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 1800, snakefile: Path | None = None) -> subprocess.CompletedProcess:
    snakefile = snakefile or (workdir / "Snakefile" if (workdir / "Snakefile").exists() else REPO / "Snakefile")
    cmd = [*SNAKEMAKE, "-s", str(snakefile), "--cores", "2", *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def planned_jobs(workdir: Path, configfile: Path) -> dict[str, int]:
    """Rule -> number of jobs that a dry run plans (parsed from Snakemake's job stats table)."""
    proc = snakemake(workdir, "-n", "--configfile", str(configfile))
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1]
    jobs = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m.group(1) != "total":
            jobs[m.group(1)] = int(m.group(2))
    return jobs


class TinyRun:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.configfile = workdir / "tiny.yaml"
        self.config = yaml.safe_load(self.configfile.read_text())
        self.out = workdir / self.config["outdir"]

    def edited_config(self, name: str, edit) -> Path:
        cfg = yaml.safe_load(self.configfile.read_text())
        edit(cfg)
        path = self.workdir / name
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path


