"""Shared fixtures: the tiny DAG, run for real once per test session in a scratch directory."""

from __future__ import annotations

import pytest

from snakemake_helpers import TinyRun, copy_workflow, snakemake


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    """The whole tiny DAG, for real (real ManiSkill, mplib, rendering, training), in a scratch copy
    of the workflow, so that tests may edit the copy's library files."""
    workdir = copy_workflow(tmp_path_factory.mktemp("tiny"))
    snakemake(workdir, "--configfile", "tiny.yaml")
    return TinyRun(workdir)
