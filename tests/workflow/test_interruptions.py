"""Runs killed mid-job: the rerun completes, nothing half-written is ever consumed, and a killed
training job resumes from its last checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from roboscape.utils.io import read_json

from snakemake_helpers import SNAKEMAKE, planned_jobs, snakemake

pytestmark = pytest.mark.slow

STEPS, EVERY = 300, 5


def checkpoint_steps(out_dir: Path) -> list[int]:
    """Steps of this run's checkpoints: multiples of EVERY (tiny.yaml's own run left steps 2 and 4,
    which the trainer sets aside as another configuration's)."""
    steps = (int(p.name.split("_")[1]) for p in (out_dir / "checkpoints").glob("step_*"))
    return sorted(s for s in steps if s % EVERY == 0)


def test_killed_training_job_resumes_and_nothing_partial_is_consumed(tiny_run):
    """SIGKILL the whole Snakemake process group once the action world model has a checkpoint;
    the rerun (`--unlock`, then the same command) redoes the job from that checkpoint. The runs
    target the world models' evaluations: the policies downstream add minutes and nothing to test."""
    wm_dir = tiny_run.out / "world_model" / "action"
    eval_json = wm_dir / "eval" / "eval.json"
    eval_before = eval_json.stat().st_mtime_ns
    targets = [
        str(p.relative_to(tiny_run.workdir)) for p in (eval_json, tiny_run.out / "world_model/text/eval/eval.json")
    ]

    def longer(cfg):
        cfg["world_model"]["action"]["train"].update(steps=STEPS, checkpoint_every=EVERY, keep_checkpoints=100)

    edited = tiny_run.edited_config("long_action_training.yaml", longer)
    # the tiny tier's text WM warm-starts from the action WM, so it is planned again too
    assert planned_jobs(tiny_run.workdir, edited, *targets) == {
        "train_wm_action": 1,
        "train_wm_text": 1,
        "eval_wm_action": 1,
        "eval_wm_text": 1,
    }
    log = tiny_run.workdir / "killed_run.log"
    with open(log, "w") as fh:
        run = subprocess.Popen(
            [*SNAKEMAKE, "--cores", "2", *targets, "--configfile", str(edited)],
            cwd=tiny_run.workdir,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 600
        while not checkpoint_steps(wm_dir) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run.poll() is None, f"the run ended before it could be killed:\n{log.read_text()[-3000:]}"
        assert checkpoint_steps(wm_dir), "no checkpoint within 10 minutes"
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    killed_at = checkpoint_steps(wm_dir)[-1]
    assert killed_at < STEPS

    # Nothing half-written under a final name: the job's outputs are absent (Snakemake removed the
    # old ones before it started; the new ones are only ever renamed into place), and the
    # downstream evaluation never ran on them.
    for output in ("train.json", "model/model.safetensors", "model/config.json"):
        assert not (wm_dir / output).exists(), output
    assert eval_json.stat().st_mtime_ns == eval_before

    try:
        snakemake(tiny_run.workdir, "--unlock", "--configfile", str(edited))
        snakemake(tiny_run.workdir, *targets, "--configfile", str(edited))  # the profile sets rerun-incomplete
        summary = read_json(wm_dir / "train.json")
        assert summary["steps"] == STEPS
        assert summary["resumed_from_step"] >= killed_at > 0  # not started over
        assert eval_json.stat().st_mtime_ns > eval_before
        assert planned_jobs(tiny_run.workdir, edited, *targets) == {}
    finally:
        # Put the tiny run back as the other tests expect it (the short training of tiny.yaml): the
        # seeded retraining gives the same weights, so Snakemake's checksums leave the rest alone.
        snakemake(tiny_run.workdir, *targets, "--configfile", str(tiny_run.configfile))
        snakemake(tiny_run.workdir, "--configfile", str(tiny_run.configfile))
    assert read_json(wm_dir / "train.json")["steps"] == tiny_run.config["world_model"]["action"]["train"]["steps"]
