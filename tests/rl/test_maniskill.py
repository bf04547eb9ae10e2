"""RL w. ManiSkill in the real simulator: where the environments step (worker processes or the
job's own process) is not part of the run, so a run killed in one mode resumes in the other."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from roboscape.policy.mlp import MLPPolicy, MLPPolicyConfig
from roboscape.rl.maniskill import SimEnvConfig, train_in_maniskill
from roboscape.rl.ppo import PPOArgs
from roboscape.sim.catalogue import build_catalogue, instruction

pytestmark = pytest.mark.slow


def test_a_run_killed_in_worker_processes_resumes_in_this_one_as_if_never_killed(tmp_path):
    scenes = [s for s in build_catalogue(0, ["push"], 2, 1).scenes if s.split == "ind"]
    instructions = {instruction(s): np.full(8, 0.1, np.float32) for s in scenes}
    torch.manual_seed(0)
    MLPPolicy(
        MLPPolicyConfig(
            image_size=36, instruction_dim=8, channels=(4, 8, 8), feature_dim=16, instruction_features=4, hidden_dim=16
        )
    ).save_pretrained(tmp_path / "sft")
    in_process = SimEnvConfig(num_envs=2, asynchronous=False, frame_skip=2, episode_steps=3, image_size=36)
    args = PPOArgs(total_steps=24, num_steps=4, update_epochs=1, num_minibatches=2, checkpoint_every=1)

    def train(cfg: SimEnvConfig, run: str, stop_after: int | None = None) -> dict:
        return train_in_maniskill(
            tmp_path / "sft", scenes, instructions, cfg, args, tmp_path / run, stop_after=stop_after
        )

    straight = train(in_process, "straight")
    train(replace(in_process, asynchronous=True), "killed", stop_after=1)
    resumed = train(in_process, "killed")
    assert straight["updates"] == resumed["updates"] == 3 and resumed["resumed_from_update"] == 1
    weights = load_file(tmp_path / "straight" / "model" / "model.safetensors")
    again = load_file(tmp_path / "killed" / "model" / "model.safetensors")
    initial = load_file(tmp_path / "sft" / "model.safetensors")
    assert weights.keys() == again.keys()
    for name in weights:
        torch.testing.assert_close(again[name], weights[name], rtol=0, atol=0)
    assert any(not torch.equal(weights[n], initial[n]) for n in weights)  # PPO changed the policy
