"""Reward validity: value order and agreement with the rule on known rewards; scoring a trajectory."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from roboscape.data.heldout_episodes import Trajectory
from roboscape.models.reward_models import RewardModel, RewardModelConfig
from roboscape.rl.reward_validity import Rewards, per_frame, score, validity
from roboscape.rl.world_model_env import GeneralReward, RewardConfig

from fakes import env_world


def episode(n: int, scene: str, rule: np.ndarray, **rewards: np.ndarray) -> pd.DataFrame:
    """One successful optimal OOD episode's rows, as :func:`per_frame` lays them out."""
    return pd.DataFrame(
        {"subset": "ood", "episode": n, "scene_id": scene, "label": "optimal", "solved": True}
        | {"step": np.arange(1, len(rule) + 1), "rule": rule, **rewards}
    )


def test_a_rising_reward_has_value_order_one_and_a_falling_one_minus_one():
    rule = np.linspace(0, 1, 6)
    frames = pd.concat(
        [
            episode(0, "a", rule, up=rule**2, down=1 - rule, flat=np.ones(6)),
            episode(1, "b", rule, up=rule**2, down=-rule, flat=np.ones(6)),
        ]
    )
    v = validity(frames, ["rule", "up", "down", "flat"])["ood"]
    assert v["episodes"] == 2 and "heldout" not in validity(frames, ["up"])
    assert v["rewards"]["up"]["value_order"] == pytest.approx(1.0) and v["rewards"]["up"]["trajectories"] == 2
    assert v["rewards"]["down"]["value_order"] == pytest.approx(-1.0)
    assert v["rewards"]["up"]["spearman_with_rule"] == pytest.approx(1.0)
    assert v["rewards"]["flat"]["value_order"] is None and v["rewards"]["flat"]["trajectories"] == 0
    assert v["rewards"]["up"]["value_order_standard_error"] == pytest.approx(0.0)  # two scenes, no spread
    # a reward missing on some episodes (NaN: the real goal of an unsolved one) is scored where it exists
    frames.loc[frames["episode"] == 1, "up"] = np.nan
    partial = validity(frames, ["up"])["ood"]["rewards"]["up"]
    assert partial["trajectories"] == 1 and partial["spearman_with_rule"] == pytest.approx(1.0)


def test_a_trajectory_is_scored_by_every_reward_frame_by_frame():
    wm, tok, _ = env_world(frame_skip=2)
    rng = np.random.default_rng(0)
    steps = 4
    traj = Trajectory(
        "ood", "push/s0", 7, "optimal", True,
        frames=rng.integers(0, 256, (steps + 1, 32, 32, 3), dtype=np.uint8),
        actions=rng.uniform(-0.5, 0.5, (steps, 7)).astype(np.float32),
        rule=np.linspace(0, 1, steps).astype(np.float32),
    )  # fmt: skip
    torch.manual_seed(0)
    head = RewardModel(RewardModelConfig(kind="embedding", feature_dim=wm.cfg.dim, hidden_dim=8))
    general = GeneralReward(RewardConfig(alpha=0.0, beta=1.0, image_size=None), num_envs=1)
    goal = traj.frames[2]  # the goal is frame 2 itself: its dense reward is 1
    rewards = Rewards(wm, tok, general=general, goals={("push/s0", traj.frames[0].tobytes()): goal}, embedding=head)
    scores = score(traj, rewards)
    assert set(scores) == {"rule", "general", "general_real_goal", "embedding"}
    assert all(len(v) == steps for v in scores.values())
    assert scores["general"][1] == pytest.approx(1.0, abs=1e-5) and (scores["general"][[0, 2, 3]] < 1).all()
    # the real goal is the last frame: 1 there, below 1 before it; an unsolved episode has none
    real = scores["general_real_goal"]
    assert real[-1] == pytest.approx(1.0, abs=1e-5) and (real[:-1] < 1).all()
    unsolved = score(dataclasses.replace(traj, solved=False), rewards)["general_real_goal"]
    assert np.isnan(unsolved).all()
    frames = per_frame([traj], [scores])
    assert list(frames["step"]) == [1, 2, 3, 4] and (frames["scene_id"] == "push/s0").all()
    with pytest.raises(ValueError, match="no imagined goal"):
        score(traj, Rewards(wm, tok, general=general, goals={}))
