"""Shared fixtures: the tiny DAG, run for real once per test session in a scratch directory, and the
same DAG under a private Slurm cluster, started in the background next to it."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from local_slurm import LocalSlurm
from snakemake_helpers import (
    SNAKEMAKE_SLURM,
    BackgroundSnakemake,
    TinyRun,
    copy_workflow,
    merged,
    planned_job_resources,
    snakemake,
    tiny_config,
)


class SlurmPipeline(NamedTuple):
    workdir: Path
    config: dict
    planned: dict[str, dict]  # Slurm job comment -> the resources the dry run declares
    run: BackgroundSnakemake


@pytest.fixture(scope="session")
def tiny_run(request, tmp_path_factory) -> TinyRun:
    """The whole tiny DAG, for real (real ManiSkill, mplib, rendering, training), in a scratch copy
    of the workflow, so that tests may edit the copy's library files. When the cluster tests are
    selected, their Slurm run of the same DAG starts first and goes on alongside: alone, the local run
    keeps about 1.4 of 2 cores busy and the Slurm run about one (short one-thread jobs, each
    Slurm job's own Snakemake start-up)."""
    if any("slurm_run" in getattr(item, "fixturenames", ()) for item in request.session.items):
        with contextlib.suppress(Exception):  # pytest keeps the error for the cluster tests to report
            request.getfixturevalue("slurm_pipeline")
    workdir = copy_workflow(tmp_path_factory.mktemp("tiny"))
    snakemake(workdir, "--configfile", "tiny.yaml", timeout=3000)
    return TinyRun(workdir)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A real single-node Slurm cluster, private to this session (tests/local_slurm.py)."""
    slurm = LocalSlurm(tmp_path_factory.mktemp("slurm")).start()
    yield slurm
    slurm.stop()


@pytest.fixture(scope="session")
def slurm_pipeline(slurm_cluster, tmp_path_factory) -> SlurmPipeline:
    """The tiny config under the repository's own profile, started (not awaited): every rule runs
    under Slurm. The action world model asks for one GPU (the test node has one stand-in GPU), so
    that the GPU request is checked too; what a job is given is not what it computes, so this is
    the tiny tier's second run from scratch. Its RL w. ManiSkill steps the environments in worker
    processes (the tiny tier steps them in the job's process), which must not change a number
    either."""
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm-run"))
    overlay = yaml.safe_load((workdir / "tiny.yaml").read_text())
    overlay["world_model"]["action"]["resources"]["gpus"] = 1
    overlay["rl"]["maniskill"]["asynchronous"] = True
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    args = ("--profile", "slurm", "--configfile", "tiny.yaml")
    env = slurm_cluster.env()
    planned = planned_job_resources(snakemake(workdir, "-n", *args, env=env, cores="all").stdout)
    run = BackgroundSnakemake(workdir, *args, env=env, cores="all", command=SNAKEMAKE_SLURM)
    yield SlurmPipeline(workdir, merged(tiny_config(), overlay), planned, run)
    run.stop()
