"""The action world model along the policy's own episodes (rule ``policy_drift``): how far the
frames a policy sees in RL w. World Model drift from the simulator's over a whole episode, and
whether the world model's done signal -- the sparse half of the general reward, and its verdict
of success -- fires where the simulator counts the task solved.

Controllability (:mod:`roboscape.eval.controllability`) answers hand-made action sequences a few
steps long; RL w. World Model trains on the world model's answers to the policy's own actions,
chosen from the world model's own frames, for ``episode_steps`` steps. Here the policy does just
that: from held-out in-domain and out-of-domain start states of its task (chosen as controllability
chooses them), it acts deterministically (its mean action) in the action world model, seeing only
the world model's frames, with the rollout settings and decoder of RL w. World Model's
environment. Its actions are then replayed in ManiSkill from the same start state: the frames the
same actions really give.

**Frames.** Per step, PSNR, SSIM and perceptual distance of the world model's frame against the
simulator's, next to controllability's floors (copying the first frame, and its tokenization); the
margins over them per start state, averaged over the whole episode and over its first and second
half (does the world model drift as the episode goes on?), with standard errors clustered by scene
(:func:`roboscape.eval.controllability.summarise`).

Each subset also records the policy's mean absolute action per dimension, and how many of its
actions fall outside the range the world model was trained on (the world model clips them; the
simulator takes them up to the policy's bounds).

**Done against success** (:func:`done_against_success`): per step, the share of episodes in which
the world model's done probability passes ``done_threshold`` and the share the simulator counts
solved; per episode, solved at any step by each, and how many by both, by the world model alone
(successes RL w. World Model pays for that the simulator does not see), by the simulator alone,
and by neither.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import torch

from roboscape.data.heldout_episodes import Trajectory
from roboscape.eval.controllability import as_uint8, score_sequence, simulate, start_rollout, summarise
from roboscape.models.perceptual import PerceptualDistance
from roboscape.models.rollout import Rollout
from roboscape.models.tokenizer import Tokenizer
from roboscape.models.world_model import WorldModel
from roboscape.sim.policy_env import PolicyEnv


@dataclass
class DriftConfig:
    start_states: int = 4
    """start states per subset (held-out in-domain, out-of-domain) of the policy's task"""
    horizon: int = 60
    """policy steps of an episode (RL w. World Model's episode length)"""
    done_threshold: float = 0.5
    """the world model's done probability that counts as success (RL w. World Model's)"""
    decoder: str = "fused-auto-by4"
    """the rollout's decoder, as RL w. World Model's environment decodes (exact, or e.g. fused-auto-by4)"""
    seed: int = 0
    """seed of the world model's sampling (temperature > 0)"""
    temperature: float = 0.0
    """the world model's sampling temperature (0: greedy)"""
    guidance: float = 1.0
    """classifier-free guidance scale of the world model's rollouts (roboscape.models.rollout)"""
    guidance_positions: str = "all"
    """where guidance applies: all positions, or hidden motion only"""
    precision: str = "fp32"
    """the world model's forward pass: fp32, bf16 or auto (roboscape.models.rollout)"""

    def __post_init__(self):
        if self.start_states < 1 or self.horizon < 1:
            raise ValueError(f"start_states and horizon must be at least 1, got {self.start_states}, {self.horizon}")
        if not 0 < self.done_threshold < 1:
            raise ValueError(f"done_threshold must be in (0, 1), got {self.done_threshold}")


class PolicyRollout(NamedTuple):
    """A policy's episodes from N start states in the world model, T steps each."""

    actions: np.ndarray  # (N, T, 7) the policy's actions, as it sent them (before any clipping)
    frames: np.ndarray  # (N, T, H, W, 3) uint8: the world model's frames after each action
    tokenized: np.ndarray  # (N, H, W, 3) uint8: the first frames through the tokenizer
    done: np.ndarray  # (N, T) the world model's done probability of each frame


@torch.no_grad()
def imagine_policy(
    policy, rollout: Rollout, first: np.ndarray, instructions: np.ndarray, horizon: int
) -> PolicyRollout:
    """The policy's deterministic episodes in the world model from first frames (N, H, W, 3) uint8,
    each with its instruction's embedding (N, D); it observes what RL w. World Model's environment
    gives it: the world model's frame now and one step ago, and the instruction."""
    _, tokenized = start_rollout(rollout, first)
    device = next(policy.parameters()).device
    frame = prev = torch.from_numpy(first)
    text = torch.from_numpy(np.asarray(instructions, np.float32))
    actions, frames, done = [], [], []
    for _ in range(horizon):
        obs = {"rgb": frame, "prev_rgb": prev, "instruction": text}
        action = policy.act({k: v.to(device) for k, v in obs.items()}, deterministic=True).action.float().cpu()
        step = rollout.step(action)
        prev, frame = frame, torch.from_numpy(as_uint8(step.frames))
        actions.append(action.numpy())
        frames.append(frame.numpy())
        done.append(step.done.cpu().numpy())
    return PolicyRollout(np.stack(actions, 1), np.stack(frames, 1), tokenized, np.stack(done, 1))


def done_against_success(done: np.ndarray, success: np.ndarray, threshold: float) -> dict:
    """The world model's done probabilities (N, T) against the simulator's success flags (N, T):
    per step the share of episodes each counts solved, and per episode (solved at any step) the
    counts of agreement and disagreement."""
    wm, sim = done >= threshold, success.astype(bool)
    wm_once, sim_once = wm.any(1), sim.any(1)
    return {
        "per_step": {"world_model_done": wm.mean(0).tolist(), "simulator_success": sim.mean(0).tolist()},
        "mean_done_probability": done.mean(0).tolist(),
        "episodes": len(done),
        "world_model_success_once": int(wm_once.sum()),
        "simulator_success_once": int(sim_once.sum()),
        "both": int((wm_once & sim_once).sum()),
        "world_model_only": int((wm_once & ~sim_once).sum()),
        "simulator_only": int((~wm_once & sim_once).sum()),
        "neither": int((~wm_once & ~sim_once).sum()),
        "steps_agreeing": float((wm == sim).mean()),
    }


def margins(summary: dict) -> dict:
    """The margins over the floors of a :func:`~roboscape.eval.controllability.summarise` result,
    with their standard errors and verdicts."""
    return {k: summary[k] for k in ("margin_over_floor", "margin_standard_error", "versus_floor_95")}


def steps_of(scores: dict[str, dict[str, np.ndarray]], steps: slice) -> dict[str, dict[str, np.ndarray]]:
    """Scores (N, T) of :func:`~roboscape.eval.controllability.score_sequence` at ``steps`` only."""
    return {name: {metric: v[:, steps] for metric, v in ms.items()} for name, ms in scores.items()}


def measure_drift(
    policy,
    wm: WorldModel,
    tokenizer: Tokenizer,
    env: PolicyEnv,
    starts: dict[str, list[Trajectory]],
    instructions: dict[str, np.ndarray],
    cfg: DriftConfig,
    perceptual: PerceptualDistance,
) -> tuple[dict, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The policy's episodes from every start state of each subset, in the world model and replayed
    in the simulator; ``instructions`` maps each start state's scene to its instruction's
    embedding. Returns the result (the rule's JSON) and, per subset, the simulator's and the world
    model's uint8 frames (N, T+1, H, W, 3), the first frame included."""
    result: dict = {"config": asdict(cfg), "subsets": {}}
    media = {}
    # one engine (and decoder) for every subset: each subset resets it
    rollout = Rollout.from_settings(wm, tokenizer, cfg)
    for subset, episodes in starts.items():
        clipped_before = rollout.clipped_actions
        first = np.stack([e.frames[0] for e in episodes])
        imagined = imagine_policy(
            policy, rollout, first, np.stack([instructions[e.scene_id] for e in episodes]), cfg.horizon
        )
        replayed = [simulate(env, e, a) for e, a in zip(episodes, imagined.actions, strict=True)]
        sim, success = map(np.stack, zip(*replayed, strict=True))
        scenes = [e.scene_id for e in episodes]
        scores = score_sequence(imagined.frames, sim, imagined.tokenized, perceptual)
        half = cfg.horizon // 2
        result["subsets"][subset] = {
            "start_states": [{"scene_id": e.scene_id, "episode_seed": e.episode_seed} for e in episodes],
            "first_frame_max_abs_difference": int(np.abs(sim[:, 0].astype(np.int16) - first).max()),
            "frames": summarise(scores, scenes),
            "halves": {
                name: margins(summarise(steps_of(scores, part), scenes))
                for name, part in (("first", slice(0, max(half, 1))), ("second", slice(half, None)))
            },
            "done_against_success": done_against_success(imagined.done, success, cfg.done_threshold),
            "action_mean_abs": np.abs(imagined.actions).mean((0, 1)).tolist(),
            # actions outside the world model's trained range, which it clips (the simulator takes them
            # up to the policy's bounds)
            "world_model_clipped_actions": rollout.clipped_actions - clipped_before,
            "actions": int(np.prod(imagined.actions.shape[:2])),
        }
        media[subset] = (sim, np.concatenate([first[:, None], imagined.frames], axis=1))
    return result, media
