"""The OpenVLA path through the DAG, on a tiny random model of OpenVLA-7B's architecture: the same
rules train it by SFT, PPO in ManiSkill and PPO in the world model, and evaluate it in ManiSkill;
switching the policy's kind reruns the policies and nothing upstream of them."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from roboscape.policy.loading import load_policy
from roboscape.policy.openvla import OpenVLAPolicy

from fakes import TINY_VLA
from snakemake_helpers import planned_jobs, snakemake

pytestmark = pytest.mark.slow

METHODS = ("sft", "rl_maniskill", "rl_world_model")


def test_openvla_trains_and_is_evaluated_by_the_same_rules(tiny_run, tmp_path):
    # a copy of the finished tiny run (outputs, mtimes and Snakemake's records), so the MLP run stays as it was
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run.workdir, workdir, symlinks=True)
    openvla = {
        "weights": None,
        "vla": TINY_VLA,
        "lora_rank": 4,
        "lora_alpha": 8,
        "value_hidden": 16,
        "dtype": "float32",
    }
    config = tiny_run.edited_config("openvla.yaml", lambda c: c["policy"].update(kind="openvla", openvla=openvla))
    shutil.copy(config, workdir / "openvla.yaml")
    out = tiny_run.config["outdir"]
    targets = [f"{out}/policy/eval/{m}/push/run0/shard_000.csv" for m in METHODS]
    assert planned_jobs(workdir, workdir / "openvla.yaml", *targets) == {
        "sft": 1,
        "rl_maniskill": 1,
        "rl_world_model": 1,
        "eval_policy": 3,
    }
    snakemake(workdir, *targets, "--configfile", "openvla.yaml")  # --configfile takes a list
    for method in METHODS:
        policy = load_policy(workdir / out / "policy" / method / "push" / ("run0" if method != "sft" else "") / "model")
        assert isinstance(policy, OpenVLAPolicy) and policy.cfg.lora_rank == 4
        episodes = pd.read_csv(workdir / out / "policy" / "eval" / method / "push" / "run0" / "shard_000.csv")
        assert len(episodes) > 0 and set(episodes["method"]) == {method}
