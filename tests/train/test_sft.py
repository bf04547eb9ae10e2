"""Supervised fine-tuning of the MLP policy and of OpenVLA on planner trajectories."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd
import pytest
import torch

from roboscape.models.text_encoder import encode_sentences
from roboscape.policy.loading import load_policy
from roboscape.policy.mlp import MLPPolicy, MLPPolicyConfig
from roboscape.policy.openvla import OpenVLAPolicy, OpenVLAPolicyConfig
from roboscape.train.launch import launch
from roboscape.train.sft import SFTData, random_shift, run_job, train_sft
from roboscape.train.trainer import TrainConfig
from roboscape.utils.io import read_json

from fakes import TINY_VLA, write_fake_shard

ARCH = MLPPolicyConfig(channels=(4, 8, 8), feature_dim=16, instruction_features=4, hidden_dim=16)


def fake_data(tmp_path) -> SFTData:
    shard = write_fake_shard(tmp_path / "t.h5", [9, 9, 9, 9], size=40)
    encode_sentences(["push the obj forward by 10 cm"], tmp_path / "instructions.safetensors")
    return SFTData(
        [str(shard)],
        ["push/obj0-plate-wood", "push/obj2-plate-wood"],
        ["optimal"],
        4,
        str(tmp_path / "instructions.safetensors"),
    )


def test_sft_clones_the_recorded_actions(tmp_path):
    data = fake_data(tmp_path)
    # the fake frames are pixel noise, which any shift makes unrecognisable: no augmentation here
    result = train_sft(
        ARCH,
        data,
        TrainConfig(steps=60, batch_size=6, lr=3e-3, warmup_steps=5, checkpoint_every=30, log_every=10),
        tmp_path / "out",
        augment_shift=0,
    )
    assert result["steps"] == 60 and result["samples"] == 6 and result["episodes"] == 2
    metrics = pd.read_csv(tmp_path / "out" / "metrics.csv")
    assert metrics["loss"].iloc[-1] < 0.3 * metrics["loss"].iloc[0]
    policy = MLPPolicy.from_pretrained(tmp_path / "out" / "model")
    assert policy.cfg.image_size == 40 and policy.cfg.instruction_dim == 384
    dataset = data.dataset()
    assert policy.cfg.action_mean == dataset.action_statistics()["action_mean"]
    batch = torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])
    error = (policy.act(batch["obs"], deterministic=True).action - batch["action"]).abs().mean()
    assert error < 0.5 * (batch["action"] - batch["action"].mean(0)).abs().mean()
    assert read_json(tmp_path / "out" / "train.json")["config"]["data"]["scene_ids"] == data.scene_ids


def test_openvla_sft_learns_the_recorded_actions_tokens(tmp_path):
    data = fake_data(tmp_path)
    cfg = OpenVLAPolicyConfig(vla=TINY_VLA, lora_rank=0, value_hidden=16)
    train = TrainConfig(steps=40, batch_size=6, lr=3e-3, warmup_steps=4, checkpoint_every=20, log_every=10)
    result = train_sft(cfg, data, train, tmp_path / "out", augment_shift=0)
    assert result["steps"] == 40
    metrics = pd.read_csv(tmp_path / "out" / "metrics.csv")
    assert metrics["loss"].iloc[-1] < 0.5 * metrics["loss"].iloc[0]
    policy = load_policy(tmp_path / "out" / "model")
    assert isinstance(policy, OpenVLAPolicy) and policy.cfg.instructions == ["push the obj forward by 10 cm"]
    assert policy.cfg.action_q01 == data.dataset().action_quantiles()["action_q01"]
    dataset = data.dataset()
    batch = torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        predicted = policy.act(batch["obs"], deterministic=True).action
    # the greedy action is in the recorded action's bin for most dimensions
    assert (policy.actions.bins(predicted) == policy.actions.bins(batch["action"])).float().mean() > 0.8


def test_random_shift_moves_both_frames_alike_and_keeps_their_content():
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (5, 16, 16, 3), dtype=torch.uint8)
    obs = {"rgb": frames, "prev_rgb": frames.clone(), "instruction": torch.zeros(5, 4)}
    shifted = random_shift(obs, 2)
    assert torch.equal(shifted["rgb"], shifted["prev_rgb"]) and shifted["rgb"].shape == frames.shape
    # each frame's centre 12x12 appears somewhere in its shifted version (a shift, not a distortion)
    for i in range(5):
        found = any(
            torch.equal(shifted["rgb"][i, 2 - dy : 14 - dy, 2 - dx : 14 - dx], frames[i, 2:14, 2:14])
            for dy in range(-2, 3)
            for dx in range(-2, 3)
        )
        assert found
    assert not all(torch.equal(shifted["rgb"][i], frames[i]) for i in range(5))
    assert random_shift(obs, 0) is obs


@pytest.mark.parametrize("kind", ["mlp", "openvla"])
def test_sft_under_accelerate_launch_with_two_processes(tmp_path, kind):
    """Several GPUs (here two CPU processes in a gloo group): DistributedDataParallel averages the
    gradients of the parameters SFT trains, so the loss must go through the wrapped model's forward
    and use every parameter that requires a gradient."""
    data = fake_data(tmp_path)
    policy = (
        {"kind": "mlp", **asdict(ARCH)}
        if kind == "mlp"
        else {"kind": "openvla", "vla": TINY_VLA, "lora_rank": 0, "value_hidden": 16}
    )
    spec = {
        "policy": policy,
        "data": asdict(data),
        "train": {"steps": 3, "batch_size": 2, "warmup_steps": 1, "checkpoint_every": 2, "log_every": 1},
        "out_dir": str(tmp_path / "out"),
    }
    launch(run_job, spec, tmp_path / "job.json", processes=2, cpu=True, threads=1)
    summary = read_json(tmp_path / "out" / "train.json")
    assert summary["steps"] == 3
    assert isinstance(load_policy(tmp_path / "out" / "model"), MLPPolicy if kind == "mlp" else OpenVLAPolicy)
