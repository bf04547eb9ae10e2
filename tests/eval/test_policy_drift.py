"""Drift along the policy's own episodes: the policy sees the world model's frames as in RL w. World
Model, the simulator replays exactly its actions from the same first frame, and the done signal is
counted against the simulator's success."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from roboscape.eval.policy_drift import DriftConfig, done_against_success, imagine_policy, measure_drift
from roboscape.models.perceptual import PerceptualDistance
from roboscape.models.rollout import Rollout
from roboscape.policy.mlp import ActOutput

from fakes import FakeSim, env_world, episode


class FrameReadingPolicy(nn.Module):
    """Moves along x by the sign of (mean brightness - 0.5) and records what it observes."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.seen: list[dict[str, torch.Tensor]] = []
        self.sent: list[torch.Tensor] = []

    def act(self, obs, deterministic=False):
        assert deterministic
        self.seen.append({k: v.clone() for k, v in obs.items()})
        x = self.scale.detach() * (obs["rgb"].float().mean((1, 2, 3)) / 255 - 0.5).sign()
        action = torch.zeros(len(x), 7)
        action[:, 0] = x + 0.25 * obs["instruction"][:, 0]
        self.sent.append(action.detach().clone())
        return ActOutput(action, torch.zeros(len(x)), torch.zeros(len(x)))


class SolvingSim(FakeSim):
    """FakeSim that counts the task solved once the actions along x have summed past 1."""

    def reset(self, options):
        self.total = 0.0
        return super().reset(options)

    def step(self, action):
        obs, *_ = super().step(action)
        self.total += float(action[0])
        return obs, 0.0, False, False, {"success": self.total > 1}


def test_done_against_success_on_known_flags():
    done = np.array([[0.1, 0.7, 0.2], [0.1, 0.2, 0.3], [0.9, 0.9, 0.9], [0.0, 0.0, 0.0]])
    success = np.array([[0, 0, 1], [0, 1, 1], [1, 1, 1], [0, 0, 0]], bool)
    out = done_against_success(done, success, threshold=0.5)
    assert out["per_step"]["world_model_done"] == [0.25, 0.5, 0.25]
    assert out["per_step"]["simulator_success"] == [0.25, 0.5, 0.75]
    assert (out["both"], out["world_model_only"], out["simulator_only"], out["neither"]) == (2, 0, 1, 1)
    assert out["world_model_success_once"] == 2 and out["simulator_success_once"] == 3 and out["episodes"] == 4
    assert out["steps_agreeing"] == pytest.approx(8 / 12)
    assert out["mean_done_probability"] == pytest.approx(done.mean(0).tolist())


def test_the_policy_sees_the_world_models_frames_and_its_actions_drive_them():
    wm, tok, states = env_world(frame_skip=1)
    first, text = states.frames[:3], states.instructions[:3]
    policy = FrameReadingPolicy()
    out = imagine_policy(policy, Rollout(wm, tok), first, text, horizon=4)
    assert out.actions.shape == (3, 4, 7) and out.frames.shape == (3, 4, 32, 32, 3) and out.done.shape == (3, 4)
    seen = policy.seen
    np.testing.assert_array_equal(seen[0]["rgb"].numpy(), first)
    np.testing.assert_array_equal(seen[0]["prev_rgb"].numpy(), first)  # at reset, as the environment gives it
    for t in range(1, 4):
        np.testing.assert_array_equal(seen[t]["rgb"].numpy(), out.frames[:, t - 1])
        np.testing.assert_array_equal(seen[t]["prev_rgb"].numpy(), seen[t - 1]["rgb"].numpy())
    np.testing.assert_array_equal(seen[0]["instruction"].numpy(), text)
    # the same actions sent straight to the rollout engine give the same frames and done signal
    direct = Rollout(wm, tok)
    direct.reset(torch.from_numpy(first).permute(0, 3, 1, 2).float() / 127.5 - 1)
    for t in range(4):
        step = direct.step(torch.from_numpy(out.actions[:, t]))
        frames = ((step.frames.clamp(-1, 1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        np.testing.assert_array_equal(frames.numpy(), out.frames[:, t])
        np.testing.assert_allclose(step.done.numpy(), out.done[:, t])


def test_the_simulator_replays_the_policys_actions_from_the_same_first_frame():
    wm, tok, states = env_world(frame_skip=1)
    firsts = {s: states.frames[s] for s in (1, 2, 3)}
    starts = {
        "heldout": [episode("heldout", "suboptimal", s, firsts[s]) for s in (1, 2)],
        "ood": [episode("ood", "suboptimal", 3, firsts[3])],
    }
    instructions = {e.scene_id: states.instructions[0] for subset in starts.values() for e in subset}
    sim = SolvingSim(firsts)
    policy = FrameReadingPolicy()
    cfg = DriftConfig(start_states=2, horizon=5, decoder="exact")
    result, media = measure_drift(policy, wm, tok, sim, starts, instructions, cfg, PerceptualDistance("stlpips"))
    held = result["subsets"]["heldout"]
    assert held["first_frame_max_abs_difference"] == 0
    sim_frames, model_frames = media["heldout"]
    assert sim_frames.shape == model_frames.shape == (2, 6, 32, 32, 3)
    np.testing.assert_array_equal(sim_frames[:, 0], model_frames[:, 0])
    # the simulator received the actions the policy chose in the world model, episode by episode
    sent = [a.numpy() for a in policy.sent]  # 5 steps of the held-out pair, then 5 of the OOD episode
    expected = [sent[t][e] for e in range(2) for t in range(5)] + [sent[5 + t][0] for t in range(5)]
    np.testing.assert_array_equal(np.stack(sim.received), np.stack(expected))
    # done against success: the simulator's success is what the replayed actions gave
    done = held["done_against_success"]
    replayed = np.stack(sim.received[:10]).reshape(2, 5, 7)[:, :, 0].cumsum(1) > 1
    assert done["per_step"]["simulator_success"] == pytest.approx(replayed.mean(0).tolist())
    assert done["simulator_success_once"] == int(replayed.any(1).sum())
    assert done["both"] + done["world_model_only"] + done["simulator_only"] + done["neither"] == 2
    # each half's margin is the per-step margin averaged over its steps (perceptual: lower is better)
    per_step = held["frames"]["per_step"]
    step_margin = np.subtract(per_step["copy_first_frame"]["perceptual"], per_step["model"]["perceptual"])
    for part, steps in (("first", slice(0, 2)), ("second", slice(2, 5))):
        margin = held["halves"][part]["margin_over_floor"]["copy_first_frame"]["perceptual"]
        assert margin == pytest.approx(step_margin[steps].mean())
    assert len(held["frames"]["per_step"]["model"]["perceptual"]) == 5
    assert result["config"]["horizon"] == 5
    # the policy sends 1 + 0.25 * instruction or -1 + ... along x: outside the fake's [-1, 1] in one direction
    x = np.stack([a.numpy() for a in policy.sent[:5]])[:, :, 0]
    assert held["world_model_clipped_actions"] == int((np.abs(x) > 1).sum()) and held["actions"] == 10


def test_a_bad_drift_config_is_refused():
    with pytest.raises(ValueError, match="start_states"):
        DriftConfig(start_states=0)
    with pytest.raises(ValueError, match="done_threshold"):
        DriftConfig(done_threshold=1.0)
