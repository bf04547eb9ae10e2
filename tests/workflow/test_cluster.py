"""`snakemake --cores all --profile slurm` on the tiny config, against a real single-node Slurm
(tests/local_slurm.py: slurmctld, slurmd, slurmdbd + MariaDB, munged, all private to the session;
the run itself starts in conftest.py, alongside the local one)."""

from __future__ import annotations

import re
import subprocess
from hashlib import sha256
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from safetensors.torch import load_file

from roboscape.utils.io import read_json

from snakemake_helpers import snakemake

pytestmark = pytest.mark.slow

SACCT_FIELDS = ("JobID", "JobName", "Comment", "State", "ReqCPUS", "ReqMem", "Timelimit", "ReqTRES")


class SlurmRun(NamedTuple):
    workdir: Path
    config: dict
    planned: dict[str, dict]  # Slurm job comment -> the resources the dry run declares
    run: subprocess.CompletedProcess
    jobs: list[dict[str, str]]  # sacct rows


@pytest.fixture(scope="module")
def slurm_run(slurm_pipeline, slurm_cluster):
    """The Slurm run of the tiny DAG (conftest's ``slurm_pipeline``), finished, with Slurm's
    accounting of its jobs."""
    run = slurm_pipeline.run.result(timeout=2400)
    sacct = slurm_cluster.run(
        "sacct",
        "-X",
        "--allusers",
        "--parsable2",
        "--noheader",
        "--starttime",
        "now-1days",
        "--format=" + ",".join(SACCT_FIELDS),
    ).stdout
    jobs = [dict(zip(SACCT_FIELDS, line.split("|"), strict=True)) for line in sacct.splitlines() if line.strip()]
    return SlurmRun(slurm_pipeline.workdir, slurm_pipeline.config, slurm_pipeline.planned, run, jobs)


def test_every_job_ran_under_slurm_with_the_resources_its_rule_declares(slurm_run):
    planned, run, jobs = slurm_run.planned, slurm_run.run, slurm_run.jobs
    rules = {comment.split("_wildcards_")[0] for comment in planned}
    assert {"rule_train_wm_action", "rule_rl_world_model", "rule_train_reward", "rule_eval_policy"} <= rules
    assert len(planned) > 30
    by_comment = {job["Comment"]: job for job in jobs}
    assert len(by_comment) == len(jobs), "one Slurm job per Snakemake job"
    assert set(by_comment) == set(planned), run.stderr[-3000:]
    assert len({job["JobName"] for job in jobs}) == 1  # all from this one run (the plugin names jobs by run)
    for comment, want in planned.items():
        job = by_comment[comment]
        assert job["State"] == "COMPLETED", (comment, job)
        assert int(job["ReqCPUS"]) == want["cpus"], (comment, job)
        assert job["ReqMem"] == f"{want['mem_mb']}M", (comment, job)
        hours, minutes, seconds = (int(x) for x in re.fullmatch(r"(\d+):(\d+):(\d+)", job["Timelimit"]).groups())
        assert hours * 60 + minutes == want["runtime"] and seconds == 0, (comment, job)
        gpus = re.search(r"gres/gpu=(\d+)", job["ReqTRES"])
        assert (int(gpus.group(1)) if gpus else 0) == want["gpu"], (comment, job)
    assert planned["rule_train_wm_action"]["gpu"] == 1


def test_slurm_run_produced_the_pipeline_and_trained_on_its_allocation(slurm_run):
    workdir, cfg = slurm_run.workdir, slurm_run.config
    out = workdir / cfg["outdir"]
    for control in ("action", "text"):
        summary = read_json(out / "world_model" / control / "train.json")
        assert summary["steps"] == cfg["world_model"][control]["train"]["steps"] and summary["processes"] == 1
        assert (out / "world_model" / control / "eval" / "eval.json").exists()
    assert read_json(out / "tokenizer" / "eval.json")["held_out_ood"]["psnr"] > 0
    log = (out / "logs" / "train_wm_action.log").read_text()
    assert "with 1 GPUs" in log  # the launch was sized from the job's GPU request


def test_two_runs_from_scratch_give_byte_identical_tables(slurm_run, tiny_run):
    """The same config on the same machine, run twice from nothing (locally, and under Slurm with a
    GPU request), gives the same tables byte for byte."""
    for table in (f"table{n}.{ext}" for n in (1, 2) for ext in ("csv", "md", "tex")):
        local, cluster = (run.workdir / slurm_run.config["outdir"] / "tables" / table for run in (tiny_run, slurm_run))
        assert sha256(local.read_bytes()).hexdigest() == sha256(cluster.read_bytes()).hexdigest(), table


def test_maniskill_rl_in_worker_processes_trains_the_same_policies(slurm_run, tiny_run):
    """RL w. ManiSkill with its environments in worker processes (the Slurm run) and one after
    another in the job's process (the local run) ends in the same weights."""
    assert (
        slurm_run.config["rl"]["maniskill"]["asynchronous"] and not tiny_run.config["rl"]["maniskill"]["asynchronous"]
    )
    out = slurm_run.config["outdir"]
    local, cluster = (
        sorted((run.workdir / out / "policy" / "rl_maniskill").glob("*/run*/model/model.safetensors"))
        for run in (tiny_run, slurm_run)
    )
    assert len(local) == len(tiny_run.config["scenes"]["tasks"]) + 1  # a policy per task and the multi-task one
    assert [p.relative_to(tiny_run.workdir) for p in local] == [p.relative_to(slurm_run.workdir) for p in cluster]
    for a, b in zip(local, cluster, strict=True):
        wa, wb = load_file(a), load_file(b)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), a.relative_to(tiny_run.workdir)


def test_rerun_under_slurm_with_nothing_changed_submits_nothing(slurm_run, slurm_cluster):
    run = snakemake(
        slurm_run.workdir, "-n", "--profile", "slurm", "--configfile", "tiny.yaml", env=slurm_cluster.env(), cores="all"
    )
    assert "Nothing to be done" in run.stdout + run.stderr
