"""Running Snakemake from tests and reading what it plans."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
SNAKEMAKE_SLURM = [sys.executable, str(REPO / "tests" / "slurm_snakemake.py")]  # less the plugin's 5 s pauses
sys.path.insert(0, str(REPO / "workflow" / "schemas"))
from configuration import merged, tier_config  # noqa: E402, F401  (merged: for the tests)

WORKFLOW_FILES = ("Snakefile", "config.yaml", "config", "workflow", "roboscape", "envs", "profiles", "slurm")


def tiny_config() -> dict:
    return tier_config(REPO / "config" / "tiny.yaml")


def copy_workflow(workdir: Path) -> Path:
    """A scratch copy of the workflow (tests may edit its library files; the jobs themselves import
    the installed ``roboscape``), with the tiny config as ``tiny.yaml``."""
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, workdir / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(src, workdir / name)
    shutil.copy(REPO / "config" / "tiny.yaml", workdir / "tiny.yaml")
    return workdir


def snakemake(
    workdir: Path,
    *args: str,
    check: bool = True,
    timeout: int = 1800,
    snakefile: Path | None = None,
    env: dict[str, str] | None = None,
    cores: str = "2",
    command: tuple[str, ...] | list[str] = tuple(SNAKEMAKE),
) -> subprocess.CompletedProcess:
    """Snakemake run to the end in ``workdir`` (an AssertionError with its output if it failed)."""
    return BackgroundSnakemake(workdir, *args, snakefile=snakefile, env=env, cores=cores, command=command).result(
        timeout, check
    )


class BackgroundSnakemake:
    """Snakemake started in ``workdir`` without waiting for it; :meth:`result` waits. Its output goes
    to temporary files, not to pipes that would fill up while nobody reads them."""

    def __init__(
        self,
        workdir: Path,
        *args: str,
        snakefile: Path | None = None,
        env: dict[str, str] | None = None,
        cores: str = "2",
        command: tuple[str, ...] | list[str] = tuple(SNAKEMAKE),
    ):
        snakefile = snakefile or (workdir / "Snakefile" if (workdir / "Snakefile").exists() else REPO / "Snakefile")
        self.cmd = [*command, "-s", str(snakefile), "--cores", cores, *args]
        self.out = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by result() or stop()
        self.err = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.cmd, cwd=workdir, stdout=self.out, stderr=self.err, env=env or os.environ.copy()
        )

    def result(self, timeout: float, check: bool = True) -> subprocess.CompletedProcess:
        try:
            returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        stdout, stderr = _read_and_close(self.out), _read_and_close(self.err)
        if check and returncode != 0:
            raise AssertionError(f"{' '.join(self.cmd)} failed ({returncode}):\n{stdout[-4000:]}\n{stderr[-6000:]}")
        return subprocess.CompletedProcess(self.cmd, returncode, stdout, stderr)

    def stop(self) -> None:
        """Terminate it (Snakemake then cancels what it submitted), killing it if it does not stop;
        its output is dropped."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.err.close()


def _read_and_close(log) -> str:
    log.seek(0)
    text = log.read()
    log.close()
    return text


def planned_jobs(workdir: Path, configfile: Path, *targets: str) -> dict[str, int]:
    """Rule -> number of jobs that a dry run plans, for ``targets`` (default: the default target),
    parsed from Snakemake's job stats table."""
    proc = snakemake(workdir, "-n", *targets, "--configfile", str(configfile))  # --configfile takes a list
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
        self.config = tiny_config()
        self.out = workdir / self.config["outdir"]

    def edited_config(self, name: str, edit) -> Path:
        """The tiny tier's whole configuration, edited, as a config file to pass with --configfile."""
        cfg = tiny_config()
        edit(cfg)
        path = self.workdir / name
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path


def planned_job_resources(dry_run_output: str) -> dict[str, dict]:
    """Slurm job comment (``rule_<rule>[_wildcards_<values joined by _>]``, as the Slurm executor
    plugin writes it) -> the cpus, mem_mb, runtime and gpu that a dry run's job block declares."""
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", dry_run_output):
        head = re.match(r"(local)?rule (\w+):\n", block)
        if not head or head.group(1):
            continue
        fields = dict(re.findall(r"^\s+(\w+): (.*)$", block, flags=re.M))
        if "output" not in fields:  # a target rule with nothing to run (`all`) is not submitted
            continue
        resources = dict(item.split("=", 1) for item in fields["resources"].split(", "))
        wildcards = [item.split("=", 1)[1] for item in fields["wildcards"].split(", ")] if "wildcards" in fields else []
        comment = f"rule_{head.group(2)}" + (f"_wildcards_{'_'.join(wildcards)}" if wildcards else "")
        jobs[comment] = {
            "cpus": int(fields.get("threads", 1)),
            "mem_mb": int(resources["mem_mb"]),
            "runtime": int(resources["runtime"]),
            "gpu": int(resources.get("gpu", 0)),
        }
    return jobs
