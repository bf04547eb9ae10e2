"""Shared fixtures: the tiny DAG, run for real once per test session in a scratch directory."""

from __future__ import annotations

import shutil

import pytest

from snakemake_helpers import REPO, TinyRun, snakemake

WORKFLOW_FILES = ("Snakefile", "config.yaml", "config", "workflow", "roboscape", "envs")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    """scenes -> trajectories -> clips on the tiny config, for real (real ManiSkill, mplib, rendering).

    It runs in a scratch copy of the workflow, so that tests may edit the copy's library files
    (the jobs themselves import the installed ``roboscape``)."""
    workdir = tmp_path_factory.mktemp("tiny")
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, workdir / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(src, workdir / name)
    shutil.copy(REPO / "config" / "tiny.yaml", workdir / "tiny.yaml")
    snakemake(workdir, "--configfile", "tiny.yaml")
    return TinyRun(workdir)
