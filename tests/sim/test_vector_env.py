"""The vector environment's contract (ManiSkill's): auto-reset within the step, the final
observation is the one before the reset, and each ended episode's metrics."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from roboscape.sim.vector_env import TorchVectorEnv


class Counter(gym.Env):
    """Observes its step count; succeeds at step 2; an episode lasts ``length`` steps; reward 1 per step."""

    def __init__(self, length: int):
        self.length = length
        self.observation_space = gym.spaces.Dict({"t": gym.spaces.Box(0, 100, (1,), np.float32)})
        self.action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return {"t": np.array([0.0], np.float32)}, {"success": False}

    def step(self, action):
        self.t += 1
        return {"t": np.array([self.t], np.float32)}, 1.0, False, self.t >= self.length, {"success": self.t == 2}


@pytest.mark.parametrize("asynchronous", [False, True])
def test_auto_reset_keeps_the_final_observation_and_reports_the_episode(asynchronous):
    envs = TorchVectorEnv([lambda: Counter(3), lambda: Counter(5)], asynchronous=asynchronous)
    try:
        obs, _ = envs.reset(seed=0)
        assert obs["t"].tolist() == [[0.0], [0.0]]
        for _ in range(2):
            obs, reward, terminated, truncated, info = envs.step(torch.zeros(2, 2))
            assert "final_info" not in info
        obs, reward, terminated, truncated, info = envs.step(torch.zeros(2, 2))
        assert truncated.tolist() == [True, False] and not terminated.any()
        assert info["_final_info"].tolist() == [True, False]
        assert obs["t"][0].item() == 0.0  # env 0 is already reset
        assert info["final_observation"]["t"][0].item() == 3.0  # the frame before the reset
        episode = info["final_info"]["episode"]
        assert episode["return"][0].item() == 3.0 and episode["episode_len"][0].item() == 3
        assert episode["success_once"][0].item() and not episode["success_at_end"][0].item()
        for _ in range(2):
            obs, reward, terminated, truncated, info = envs.step(torch.zeros(2, 2))
        assert (
            info["_final_info"].tolist() == [False, True]
            and info["final_info"]["episode"]["episode_len"][1].item() == 5
        )
        assert info["final_info"]["episode"]["return"][1].item() == 5.0
        with pytest.raises(ValueError, match="actions must be"):
            envs.step(torch.zeros(3, 2))
    finally:
        envs.close()
