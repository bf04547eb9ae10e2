"""The world model as an RL environment: the contract PPO relies on, the reward, bad actions."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from gymnasium.utils.env_checker import check_env

from roboscape.models import precision as precision_module
from roboscape.models.precision import has_fast_bf16
from roboscape.models.reward_models import RewardModel, RewardModelConfig
from roboscape.models.rollout import Rollout
from roboscape.rl.world_model_env import (
    GeneralReward,
    LearnedReward,
    RewardConfig,
    SingleWorldModelEnv,
    WMEnvConfig,
    WorldModelEnv,
    held_done,
    make_reward,
)

from fakes import env_world


class StepReward:
    """A stand-in reward: 1 per step (the contract's tests need no perceptual model)."""

    def reset(self, envs, goals):
        pass

    def __call__(self, frames, done, tokens):
        return torch.ones(frames.shape[0])


def test_auto_reset_per_environment_keeps_the_final_observation():
    wm, tok, states = env_world()
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


def test_a_guided_environment_steps_through_its_auto_resets_with_the_guided_rollout():
    wm, tok, states = env_world(action_dropout=0.1)
    frames = {}
    for guidance, positions in ((1.0, "all"), (3.0, "all"), (3.0, "hidden")):
        cfg = WMEnvConfig(
            num_envs=3, episode_steps=2, guidance=guidance, guidance_positions=positions, precision="bf16"
        )
        env = WorldModelEnv(wm, tok, states, cfg, StepReward())
        assert (env.rollout.guidance, env.rollout.guidance_positions) == (guidance, positions)
        assert env.rollout.precision == "bf16"
        obs, _ = env.reset(seed=0)
        steps = [env.step(torch.full((3, 7), 0.5)) for _ in range(3)]  # an auto-reset after the second
        assert steps[1][4]["_final_info"].all() and not steps[2][3].any()
        frames[guidance, positions] = torch.stack(
            [steps[0][0]["rgb"], steps[1][4]["final_observation"]["rgb"], steps[2][0]["rgb"]]
        )
    # guidance changes what the environment shows, and guiding only hidden motion is not guiding everywhere
    assert not torch.equal(frames[1.0, "all"], frames[3.0, "all"])
    assert not torch.equal(frames[3.0, "hidden"], frames[3.0, "all"])


class DoneReward(StepReward):
    """A stand-in reward that pays the done signal it is given."""

    def __call__(self, frames, done, tokens):
        return done.float().cpu()


def test_the_done_signal_counts_once_held_for_done_steps(monkeypatch):
    wm, tok, states = env_world()
    # each step's done probabilities of two environments, over two 4-step episodes
    script = [[0.9, 0.9], [0.1, 0.9], [0.9, 0.9], [0.9, 0.2], [0.9, 0.9], [0.9, 0.9]]
    step = Rollout.step
    for done_steps, success, paid in (
        (1, [[1, 1], [0, 1], [1, 1], [1, 0], [1, 1], [1, 1]], script),
        # held for 2: the least of the step's and the one before, 0 on an episode's first step
        (2, [[0, 0], [0, 1], [0, 1], [1, 0], [0, 0], [1, 1]],
         [[0, 0], [0.1, 0.9], [0.1, 0.9], [0.9, 0.2], [0, 0], [0.9, 0.9]]),
    ):  # fmt: skip
        steps = iter(script)

        def scripted(self, a, steps=steps):
            return dataclasses.replace(step(self, a), done=torch.tensor(next(steps)))

        monkeypatch.setattr(Rollout, "step", scripted)
        cfg = WMEnvConfig(num_envs=2, episode_steps=4, done_steps=done_steps)
        env = WorldModelEnv(wm, tok, states, cfg, DoneReward())
        env.reset(seed=0)
        out = [env.step(torch.zeros(2, 7)) for _ in script]
        assert [o[4]["success"].int().tolist() for o in out] == success
        assert torch.allclose(torch.stack([o[1] for o in out]), torch.tensor(paid))  # the reward sees the held signal
        assert torch.allclose(torch.stack([o[4]["done_prob"] for o in out]), torch.tensor(script))  # info: each step's
        assert out[3][4]["final_info"]["episode"]["success_once"].tolist() == [True, True]
    with pytest.raises(ValueError, match="done_steps"):
        WMEnvConfig(done_steps=0)


def test_held_done_is_the_least_of_the_last_steps():
    done = torch.tensor([[0.9, 0.1, 0.8, 0.7, 0.6, 0.2]])
    assert torch.equal(held_done(done, 1), done)
    assert torch.equal(held_done(done, 3), torch.tensor([[0.0, 0.0, 0.1, 0.1, 0.6, 0.2]]))


def test_the_same_seed_gives_the_same_episodes():
    wm, tok, states = env_world()
    runs = []
    for _ in range(2):
        env = WorldModelEnv(wm, tok, states, WMEnvConfig(num_envs=2, episode_steps=3), StepReward())
        obs, _ = env.reset(seed=5)
        frames = [obs["rgb"]] + [env.step(torch.full((2, 7), 0.3))[0]["rgb"] for _ in range(4)]
        runs.append(torch.stack(frames))
    assert torch.equal(runs[0], runs[1])


def test_bad_actions_are_refused_and_out_of_range_ones_clipped_and_counted():
    wm, tok, states = env_world(frame_skip=2)
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
    reward = GeneralReward(
        RewardConfig(alpha=0.3, beta=0.7, sparse_threshold=0.6, precision="fp32", image_size=None), num_envs=3
    )
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


def test_the_general_reward_in_bf16_is_within_rounding_of_fp32():
    torch.manual_seed(0)
    goals, frames = (torch.rand(4, 3, 64, 64) * 2 - 1 for _ in range(2))
    frames[0] = goals[0]
    done = torch.tensor([0.9, 0.1, 0.6, 0.2])
    rewards = {}
    for precision in ("fp32", "bf16"):
        reward = GeneralReward(RewardConfig(precision=precision, image_size=None), num_envs=4)
        reward.reset(torch.arange(4), goals)
        rewards[precision] = reward(frames, done, None)
    assert rewards["bf16"].dtype == torch.float32
    torch.testing.assert_close(rewards["bf16"], rewards["fp32"], atol=2e-3, rtol=0)
    assert not torch.equal(rewards["bf16"], rewards["fp32"])  # the trunk did compute in bf16
    assert GeneralReward(RewardConfig(precision="auto"), 1).bf16 == has_fast_bf16("cpu")
    with pytest.raises(ValueError, match="reward precision must be one of"):
        RewardConfig(precision="fp16")


def test_a_bf16_reward_warns_where_bf16_would_be_emulated(monkeypatch):
    monkeypatch.setattr(precision_module, "has_fast_bf16", lambda device_type: False)
    with pytest.warns(UserWarning, match="a bf16 reward trunk is emulated"):
        GeneralReward(RewardConfig(precision="bf16"), num_envs=1)
    assert not GeneralReward(RewardConfig(precision="auto"), num_envs=1).bf16


def test_the_general_reward_at_a_smaller_size_is_the_distance_of_the_resized_frames():
    torch.manual_seed(0)
    goals, frames = (torch.rand(2, 3, 64, 64) * 2 - 1 for _ in range(2))
    done = torch.tensor([0.9, 0.1])
    rewards = {}
    for size in (None, 64, 32):
        reward = GeneralReward(RewardConfig(alpha=0.0, beta=1.0, precision="fp32", image_size=size), num_envs=2)
        reward.reset(torch.arange(2), goals)
        rewards[size] = reward(frames, done, None)
    assert torch.equal(rewards[64], rewards[None])  # at the frames' own size nothing is resized
    small = [F.interpolate(x, size=(32, 32), mode="bilinear", antialias=True) for x in (frames, goals)]
    torch.testing.assert_close(rewards[32], 1 - reward.perceptual(*small))
    assert not torch.allclose(rewards[32], rewards[None])
    with pytest.raises(ValueError, match="at least 16"):
        RewardConfig(image_size=8)


def test_a_single_environment_passes_gymnasiums_checker():
    wm, tok, states = env_world()
    env = SingleWorldModelEnv(WorldModelEnv(wm, tok, states, WMEnvConfig(num_envs=1, episode_steps=3), StepReward()))
    check_env(env, skip_render_check=True)


def test_the_embedding_reward_reads_the_hidden_states_each_frame_was_predicted_from(tmp_path):
    wm, tok, states = env_world()
    torch.manual_seed(1)
    head = RewardModel(RewardModelConfig(kind="embedding", feature_dim=wm.cfg.dim, hidden_dim=8))
    head.save_pretrained(tmp_path / "embedding")
    reward = make_reward(RewardConfig(kind="embedding"), 2, tmp_path / "embedding")
    assert isinstance(reward, LearnedReward)
    env = WorldModelEnv(wm, tok, states, WMEnvConfig(num_envs=2), reward, seed=3)
    env.reset(seed=3)
    first = env._first_frames(env._state)  # (an episode the done signal ends is reset at once)
    actions = torch.full((2, 7), 0.2)
    _, r, _, _, _ = env.step(actions)
    # the same rollout by hand: the head on the world model's features of that step
    rollout = Rollout(wm, tok, seed=3)
    rollout.reset(first)
    step = rollout.step(actions)
    assert step.features.shape == (2, wm.cfg.dim)
    torch.testing.assert_close(r, head.reward(step.features))
    with pytest.raises(ValueError, match="not a proxy one"):
        make_reward(RewardConfig(kind="proxy"), 2, tmp_path / "embedding")
    with pytest.raises(ValueError, match="give its directory"):
        make_reward(RewardConfig(kind="embedding"), 2)
    with pytest.raises(ValueError, match="unknown reward"):
        make_reward(RewardConfig(kind="oracle"), 2)


def test_the_proxy_reward_reads_the_decoded_frame():
    torch.manual_seed(0)
    proxy = LearnedReward(RewardModel(RewardModelConfig(kind="proxy", image_size=40, channels=(4, 8, 8), hidden_dim=8)))
    frames = torch.rand(3, 3, 40, 40) * 2 - 1
    torch.testing.assert_close(proxy(frames, torch.zeros(3), torch.zeros(3, 5)), proxy.model.reward(frames))
