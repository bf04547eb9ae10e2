"""Reward validity: value order and agreement with the rule on known rewards; scoring a trajectory;
the sparse term with the arm held."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from roboscape.data.heldout_episodes import Trajectory
from roboscape.models.reward_models import RewardModel, RewardModelConfig
from roboscape.models.rollout import Rollout
from roboscape.rl.reward_validity import (
    Rewards,
    held_arm,
    held_arm_actions,
    per_frame,
    score,
    start_states,
    validity,
)
from roboscape.rl.world_model_env import GeneralReward, RewardConfig, WMEnvConfig
from roboscape.sim.policy_io import GRIPPER

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


def start(subset: str, scene: str, seed: int, first: np.ndarray) -> Trajectory:
    """A trajectory of which only the first frame matters."""
    return Trajectory(subset, scene, seed, "suboptimal", False, first[None], np.zeros((0, 7), np.float32), np.zeros(0))


@pytest.mark.parametrize(("bias", "fired", "done_steps"), [(10.0, True, 1), (-10.0, False, 1), (10.0, True, 3)])
def test_the_held_arm_counts_the_episodes_whose_done_signal_passes(monkeypatch, bias, fired, done_steps):
    wm, tok, states = env_world(frame_skip=2)
    with torch.no_grad():  # a done head that always (never) passes, whatever it is shown
        wm.done_head[-1].weight.zero_()
        wm.done_head[-1].bias.fill_(bias)
    frames = states.frames
    trajectories = [
        start("ood", "push/s0", 1, frames[0]),
        start("ood", "push/s0", 1, frames[0]),  # the same start state, recorded twice: counted once
        start("ood", "push/s1", 2, frames[1]),
        start("ood", "push/s2", 3, frames[2]),
        start("heldout", "push/s3", 4, frames[3]),
    ]
    starts = start_states(trajectories, 16)
    assert [len(starts["ood"]), len(starts["heldout"])] == [3, 1]
    assert len(start_states(trajectories, 2)["ood"]) == 2
    actions = []
    step = Rollout.step
    monkeypatch.setattr(Rollout, "step", lambda self, a: actions.append(a.clone()) or step(self, a))
    env = WMEnvConfig(num_envs=2, episode_steps=4, decoder="exact", done_steps=done_steps)
    simulated = []
    std = np.full(7, 0.5)
    # a simulator in which only push/s1's start state is solved
    result = held_arm(
        wm, tok, starts, env, 0.5, std, lambda e, a: simulated.append((e.scene_id, a)) or e.scene_id == "push/s1", 0.6
    )
    assert list(result["kinds"]) == ["still", "jitter"] and result["steps"] == 4 and result["done_steps"] == done_steps
    for kind in ("still", "jitter"):
        ood = result["kinds"][kind]["ood"]
        assert ood["start_states"] == 3 and result["kinds"][kind]["heldout"]["start_states"] == 1
        assert len(ood["mean_done_per_step"]) == 4
        assert ood["done_passed"] == (3 if fired else 0) and ood["share"] == (1.0 if fired else 0.0)
        assert ood["first_step_mean"] == (float(done_steps) if fired else None)  # held from the first step
        low, high = ood["share_95"]
        assert low - 1e-9 <= ood["share"] <= high + 1e-9 and (low > 0.3 if fired else high < 0.7)
        assert ood["solved_in_simulator"] == 1 and result["kinds"][kind]["heldout"]["solved_in_simulator"] == 0
    # in batches of num_envs, held out (1) then OOD (2 + 1), still then jitter
    assert [len(a) for a in actions] == ([1] * 4 + [2] * 4 + [1] * 4) * 2
    rest = torch.zeros(7)
    rest[GRIPPER] = 1.0
    assert all(torch.equal(a, rest.expand_as(a)) for a in actions[:12])
    jitter = torch.cat(actions[12:])
    assert (jitter[:, GRIPPER] == 1).all() and (jitter[:, :GRIPPER] != 0).all()
    assert jitter[:, :GRIPPER].std().item() == pytest.approx(0.6 * 0.5, rel=0.3)
    # the simulator saw every episode's own actions, (T, 7) each
    assert len(simulated) == 8 and all(a.shape == (4, 7) for _, a in simulated)
    assert np.array_equal(simulated[0][1], actions_of(actions[:4], 0))


def actions_of(steps: list[torch.Tensor], row: int) -> np.ndarray:
    """One episode's actions (T, 7) from the rollout's per-step batches."""
    return torch.stack([a[row] for a in steps]).numpy()


def test_held_arm_actions_are_still_or_small_jitter_and_reject_other_kinds():
    rng = np.random.default_rng(0)
    std = np.arange(1, 8, dtype=np.float64)
    still = held_arm_actions("still", 2, 3, std, rng, 0.6)
    assert still.shape == (2, 3, 7) and (still[..., :GRIPPER] == 0).all() and (still[..., GRIPPER] == 1).all()
    jitter = held_arm_actions("jitter", 400, 50, std, rng, 0.6)
    assert jitter[..., :GRIPPER].std((0, 1)) == pytest.approx(0.6 * std[:GRIPPER], rel=0.02)
    with pytest.raises(ValueError, match="unknown held-arm"):
        held_arm_actions("walk", 1, 1, std, rng, 0.6)
