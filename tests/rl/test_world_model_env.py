"""The world model as an RL environment: the contract PPO relies on, the reward, bad actions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from roboscape.models.tokenizer import Tokenizer, TokenizerConfig
from roboscape.models.world_model import WorldModel, WorldModelConfig
from roboscape.rl.world_model_env import (
    GeneralReward,
    InitialStates,
    RewardConfig,
    SingleWorldModelEnv,
    WMEnvConfig,
    WorldModelEnv,
)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def world(frame_skip: int = 2):
    torch.manual_seed(0)
    tok = Tokenizer(TokenizerConfig(image_size=32, downsample_factor=8, base_channels=16, codebook_bits=6)).eval()
    wm = WorldModel(
        WorldModelConfig(
            codebook_size=64,
            tokens_hw=4,
            window=3,
            dim=32,
            depth=1,
            heads=4,
            frame_skip=frame_skip,
            action_low=[-1.0] * 7,
            action_high=[1.0] * 7,
        )
    ).eval()
    rng = np.random.default_rng(0)
    states = InitialStates(
        frames=rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8),
        goals=rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8),
        instructions=unit(rng.standard_normal((5, 8))),
        scene_ids=[f"push/s{i}" for i in range(5)],
    )
    return wm, tok, states


class StepReward:
    """A stand-in reward: 1 per step (the contract's tests need no perceptual model)."""

    def reset(self, envs, goals):
        pass

    def __call__(self, frames, done, tokens):
        return torch.ones(frames.shape[0])


def test_auto_reset_per_environment_keeps_the_final_observation():
    wm, tok, states = world()
    env = WorldModelEnv(
        wm, tok, states, WMEnvConfig(num_envs=3, episode_steps=2, terminate_on_done=False), StepReward()
    )
    obs, info = env.reset(seed=0)
    assert {k: tuple(v.shape) for k, v in obs.items()} == {
        "rgb": (3, 32, 32, 3),
        "prev_rgb": (3, 32, 32, 3),
        "instruction": (3, 8),
    }
    assert obs["rgb"].dtype == torch.uint8 and torch.equal(obs["rgb"], obs["prev_rgb"])
    first, _, _, truncated, info = env.step(torch.zeros(3, 7))
    assert not truncated.any() and "final_info" not in info
    assert torch.equal(first["prev_rgb"], obs["rgb"])
    second, reward, terminated, truncated, info = env.step(torch.zeros(3, 7))
    assert truncated.all() and not terminated.any() and info["_final_info"].all()
    assert torch.equal(info["final_observation"]["prev_rgb"], first["rgb"])  # the last frames before the reset
    assert info["final_info"]["episode"]["return"].tolist() == [2.0] * 3
    assert info["final_info"]["episode"]["episode_len"].tolist() == [2] * 3
    # the new episodes start from initial states of the pool
    pool = {states.frames[i].tobytes() for i in range(5)}
    assert all(second["rgb"][i].numpy().tobytes() in pool for i in range(3))
    assert torch.equal(second["rgb"], second["prev_rgb"])


def test_the_same_seed_gives_the_same_episodes():
    wm, tok, states = world()
    runs = []
    for _ in range(2):
        env = WorldModelEnv(wm, tok, states, WMEnvConfig(num_envs=2, episode_steps=3), StepReward())
        obs, _ = env.reset(seed=5)
        frames = [obs["rgb"]] + [env.step(torch.full((2, 7), 0.3))[0]["rgb"] for _ in range(4)]
        runs.append(torch.stack(frames))
    assert torch.equal(runs[0], runs[1])


def test_bad_actions_are_refused_and_out_of_range_ones_clipped_and_counted():
    wm, tok, states = world(frame_skip=2)
    env = WorldModelEnv(wm, tok, states, WMEnvConfig(num_envs=2), StepReward())
    env.reset(seed=0)
    assert env.single_action_space.high.tolist() == [2.0] * 6 + [1.0]  # the policy's rate: 2 control steps
    with pytest.raises(ValueError, match="NaN"):
        env.step(torch.full((2, 7), float("nan")))
    with pytest.raises(ValueError, match="actions must be"):
        env.step(torch.zeros(3, 7))
    _, _, _, _, info = env.step(torch.tensor([[1.5] + [0.0] * 6, [0.5] * 7]))
    assert info["action_clipped"].tolist() == [True, False]  # beyond the world model's trained range


def test_the_general_reward_on_known_frames():
    reward = GeneralReward(RewardConfig(alpha=0.3, beta=0.7, sparse_threshold=0.6), num_envs=3)
    torch.manual_seed(0)
    frames = torch.rand(3, 3, 32, 32) * 2 - 1
    other = torch.rand(3, 3, 32, 32) * 2 - 1
    done = torch.tensor([0.9, 0.1, 0.6])
    reward.reset(torch.arange(3), frames)
    torch.testing.assert_close(
        reward(frames, done, None), torch.tensor([1.0, 0.7, 1.0]), atol=1e-5, rtol=0
    )  # sim 1 at the goal
    distance = reward.perceptual(frames, other)  # LPIPS itself, both images through the trunk
    away = reward(other, done, None)
    torch.testing.assert_close(away, 0.3 * torch.tensor([1.0, 0.0, 1.0]) + 0.7 * (1 - distance))
    reward.reset(torch.tensor([1]), other[1:2])  # a new episode's goal in environment 1 only
    r = reward(other, done, None)
    assert r[1] == pytest.approx(0.7, abs=1e-5) and r[0] == away[0] and r[2] == away[2]
    with pytest.raises(RuntimeError, match="no goals"):
        GeneralReward(RewardConfig(), num_envs=1)(frames[:1], done[:1], None)


def test_a_single_environment_passes_gymnasiums_checker():
    wm, tok, states = world()
    env = SingleWorldModelEnv(WorldModelEnv(wm, tok, states, WMEnvConfig(num_envs=1, episode_steps=3), StepReward()))
    check_env(env, skip_render_check=True)
