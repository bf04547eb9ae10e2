"""Controllability against the simulator (the paper's Figure 9, measured; rule ``controllability``).

A policy in training sends the action world model actions unlike any in its data: extremes, noise,
long pushes in one direction. The paper shows that its world model answers them with plausible
frames; here every action sequence is also run in ManiSkill from the same state, so the answer is
measured against the truth instead of shown.

**Start states** are the first states of recorded episodes no world model trained on: the held-out
in-domain episodes and the out-of-domain scenes' (:mod:`roboscape.data.heldout_episodes`),
``start_states`` per subset, evenly spaced over the suboptimal recordings. The simulator resets to
the episode's scene and seed -- the state the recording started from -- and the world model starts
from the recorded first frame; ``first_frame_max_abs_difference`` says how far apart the two first
frames are (0: the same frame).

**Sequences** (:func:`action_sequences`), at the policy's rate (one step: ``frame_skip`` control
steps, as the world model's): no motion; each translation axis held at the bound of the range the
world model was trained on (its recorded action range), both signs; the gripper closed, and closed
then opened again; uniform random actions in the trained range, and in twice that range (which the
world model clips to its range; the simulator takes them up to its own bounds); and the start
episode's own recorded suboptimal actions. Without motion the gripper is held open, as at the
start of every recording. The world model decodes greedily by default, as RL w. World Model's
environment does; ``temperature`` samples its tokens instead (the question whether a sampled model
answers an action its greedy mode ignores).

**Scores**, per sequence and subset: PSNR, SSIM and perceptual distance of the world model's frame
against the simulator's at every step, next to two floors (:data:`FLOORS`): copying the first
frame, and copying its tokenized reconstruction -- what the world model shows if it predicts the
first frame's tokens again, decoded as its own frames are; a still scene is all a world model can
get right there, so the decoder's cost is not counted against it. The margin over each floor
(positive: the world model is better) per start state, averaged over the horizon, with its
standard error clustered by scene, and the verdict it allows (:func:`versus_floor`: above, level
with or below the floor at 95%); per subset, which sequences fall in each (``beats_floor`` and
``beats_floor_on_every_sequence`` go by the point estimate alone); and how far apart each axis's
opposite extremes leave the final frame (mean absolute pixel difference, in [0, 1] units) in the
world model against the simulator.

**Token motion** (:func:`token_dynamics`), per sequence and step: the share of token positions
whose token changes in the world model's rollout and in the simulator's frames tokenized; the
model's probability of keeping each position's previous token, over all positions and over those
the simulator changes (at the first step, where both start from the same tokens, this is the
model's belief in "nothing moves here" where something does); and the hidden motion, the share of
positions whose token the rollout kept although the model gave keeping it less than even odds. A
greedy ``bits`` rollout takes each bit's most likely value, and that per-bit mode can be the kept
token when motion is likely but its destination uncertain: hidden motion tells this decoding
failure apart from a model that expects no motion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import torch

from roboscape.data.frames import to_model_range, to_uint8
from roboscape.data.heldout_episodes import Trajectory
from roboscape.eval.world_model_eval import HIGHER_IS_BETTER, frame_metrics
from roboscape.models.perceptual import PerceptualDistance
from roboscape.models.rollout import Rollout
from roboscape.models.tokenizer import Tokenizer
from roboscape.models.world_model import WorldModel, token_nll
from roboscape.sim.policy_env import PolicyEnv
from roboscape.sim.policy_io import GRIPPER
from roboscape.utils.stats import Z95, clustered_standard_error

RECORDED = "recorded suboptimal actions"
AXES = "xyz"
FLOORS = {"copy_first_frame": "copying the first frame", "copy_first_frame_tokenized": "copying its tokenization"}


@dataclass
class ControllabilityConfig:
    start_states: int = 4  # start states per subset (held-out in-domain, out-of-domain)
    horizon: int = 15  # policy steps per sequence (the recorded one: at most what its episode holds)
    seed: int = 0  # seed of the random sequences and of the world model's sampling
    temperature: float = 0.0  # the world model's sampling temperature (0: greedy, as RL w. World Model's default)
    keep_threshold: float = 0.0  # at temperature 0: 0 greedy, above 0 keep-or-change (roboscape.models.world_model)
    guidance: float = 1.0  # classifier-free guidance scale of the world model's rollouts (roboscape.models.rollout)
    guidance_positions: str = "all"  # where guidance applies: all positions, or hidden motion only
    precision: str = "fp32"  # the world model's forward pass: fp32, bf16 or auto (roboscape.models.rollout)

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"the sampling temperature must be >= 0, got {self.temperature}")
        if not 0 <= self.keep_threshold < 1:
            raise ValueError(f"keep_threshold must be in [0, 1), got {self.keep_threshold}")


def pick_start_episodes(episodes: Sequence[Trajectory], subset: str, n: int) -> list[Trajectory]:
    """``n`` episodes of ``subset``, evenly spaced over its suboptimal recordings (over all of its
    recordings where it has no suboptimal one)."""
    pool = [e for e in episodes if e.subset == subset]
    suboptimal = [e for e in pool if e.label == "suboptimal"]
    pool = suboptimal or pool
    if not pool:
        raise ValueError(f"no {subset} episode to start from")
    return [pool[i] for i in np.linspace(0, len(pool) - 1, min(n, len(pool))).round().astype(int)]


def action_sequences(low: np.ndarray, high: np.ndarray, horizon: int, seed: int) -> dict[str, np.ndarray]:
    """The hand-made sequences, (horizon, 7) each, from the world model's trained action range
    ``low``..``high`` (see the module docstring; the recorded sequence is the start episode's)."""
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    rest = np.zeros(len(low), np.float32)
    rest[GRIPPER] = 1.0  # open
    held = lambda a: np.tile(a, (horizon, 1))  # noqa: E731
    sequences = {"no motion": held(rest)}
    for axis, name in enumerate(AXES):
        for sign, bound in (("+", high), ("-", low)):
            a = rest.copy()
            a[axis] = bound[axis]
            sequences[f"{sign}{name} at trained extreme"] = held(a)
    closed = rest.copy()
    closed[GRIPPER] = -1.0
    sequences["gripper closed"] = held(closed)
    sequences["gripper closed, then opened"] = np.concatenate(
        [held(closed)[: horizon // 2], held(rest)[horizon // 2 :]]
    )
    rng = np.random.default_rng(seed)
    uniform = rng.uniform(size=(horizon, len(low))).astype(np.float32)
    sequences["uniform random in range"] = low + (high - low) * uniform
    centre, half = (low + high) / 2, (high - low) / 2
    sequences["uniform random, twice the range"] = centre + half * (4 * uniform[::-1] - 2)
    return sequences


def simulate(env: PolicyEnv, episode: Trajectory, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The simulator's frames (T+1, H, W, 3) from the episode's start state under ``actions`` (T, 7),
    and whether the task is solved after each action (T,)."""
    obs, _ = env.reset(options={"scene": episode.scene_id, "episode_seed": episode.episode_seed})
    frames, success = [obs["rgb"]], []
    for a in actions:
        obs, _, _, _, info = env.step(a)
        frames.append(obs["rgb"])
        success.append(bool(info["success"]))
    return np.stack(frames), np.array(success, dtype=bool)


class Imagined(NamedTuple):
    """A world model's rollouts of N start states over T steps."""

    frames: np.ndarray  # (N, T, H, W, 3) uint8
    tokenized: np.ndarray  # (N, H, W, 3) uint8: the first frames through the tokenizer, decoded as the rollout decodes
    tokens: torch.Tensor  # (N, T+1, h, w): the first frames' tokens, then the rollout's
    keep_probability: torch.Tensor  # (N, T, h, w): the model's probability of each position's previous token


def keep_probability(logits: torch.Tensor, previous: torch.Tensor, token_target: str) -> torch.Tensor:
    """The model's probability (N, L) that each position keeps its previous token (N, L), from a
    rollout step's logits (N, L, K): under ``bits`` the product of the bits' probabilities, as the
    loss factorises a token."""
    return torch.exp(-token_nll(logits, previous, token_target))


def as_uint8(frames: torch.Tensor) -> np.ndarray:
    """Model-range frames (..., 3, H, W) as uint8 images (..., H, W, 3) on the CPU."""
    return to_uint8(frames.clamp(-1, 1)).cpu().numpy()


@torch.no_grad()
def start_rollout(rollout: Rollout, first: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Start ``rollout`` from first frames (N, H, W, 3) uint8; returns their tokens (N, h, w) and
    their tokenization decoded (N, H, W, 3) uint8 -- the tokenized copy floor."""
    start = to_model_range(torch.from_numpy(first))
    tokens = rollout.reset(start)
    tokenizer = rollout.tokenizer
    context = tokenizer.decoder_context(start.to(rollout.device), tokens)
    return tokens, as_uint8(tokenizer.decode_tokens(tokens, context))


@torch.no_grad()
def imagine(rollout: Rollout, first: np.ndarray, actions: np.ndarray) -> Imagined:
    """The world model's rollouts from first frames (N, H, W, 3) under actions (N, T, 7)."""
    tokens, tokenized = start_rollout(rollout, first)
    frames, sequence, keep = [], [tokens], []
    for t in range(actions.shape[1]):
        step = rollout.step(torch.from_numpy(actions[:, t]))
        previous = sequence[-1]
        keep.append(keep_probability(step.logits, previous.flatten(1), rollout.wm.cfg.token_target).view_as(previous))
        frames.append(step.frames)
        sequence.append(step.tokens)
    return Imagined(
        as_uint8(torch.stack(frames, dim=1)),
        tokenized,
        torch.stack(sequence, dim=1).cpu(),
        torch.stack(keep, dim=1).cpu(),
    )


@torch.no_grad()
def tokenize_frames(tokenizer: Tokenizer, frames: np.ndarray, batch: int = 64) -> torch.Tensor:
    """Tokens (..., h, w) of uint8 frames (..., H, W, 3), encoded ``batch`` frames at a time."""
    flat = frames.reshape(-1, *frames.shape[-3:])
    device = next(tokenizer.parameters()).device
    tokens = [
        tokenizer.encode(to_model_range(torch.from_numpy(flat[i : i + batch])).to(device)).cpu()
        for i in range(0, len(flat), batch)
    ]
    return torch.cat(tokens).view(*frames.shape[:-3], *tokens[0].shape[1:])


def token_dynamics(tokens: torch.Tensor, keep: torch.Tensor, simulator_tokens: torch.Tensor) -> dict:
    """Token motion (module docstring) from the rollout's tokens (N, T+1, h, w), its keep
    probabilities (N, T, h, w) and the simulator's frames tokenized (N, T+1, h, w): per step
    (means over start states and positions) and over the whole horizon; a share over the positions
    the simulator changes is None where it changes none."""
    model_changed = tokens[:, 1:] != tokens[:, :-1]
    simulator_changed = simulator_tokens[:, 1:] != simulator_tokens[:, :-1]
    hidden = ~model_changed & (keep < 0.5)
    dims = (0, 2, 3)
    moved, kept_there = simulator_changed.sum(dims), (keep * simulator_changed).sum(dims)
    shares = {"model_changed": model_changed, "simulator_changed": simulator_changed, "hidden_motion": hidden}
    return {
        "per_step": {
            **{k: v.float().mean(dims).tolist() for k, v in shares.items()},
            "keep_probability": keep.mean(dims).tolist(),
            "keep_probability_where_simulator_changes": [
                float(k / n) if n else None for k, n in zip(kept_there, moved, strict=True)
            ],
        },
        "mean": {
            **{k: float(v.float().mean()) for k, v in shares.items()},
            "keep_probability": float(keep.mean()),
            "keep_probability_where_simulator_changes": float(kept_there.sum() / moved.sum()) if moved.sum() else None,
        },
    }


def score_sequence(
    model: np.ndarray, sim: np.ndarray, tokenized: np.ndarray, perceptual: PerceptualDistance
) -> dict[str, dict[str, np.ndarray]]:
    """Scores (N, T) of the world model's frames (N, T, ...) and of the floors -- the simulator's
    first frame and its tokenized reconstruction ``tokenized`` (N, ...) -- against the simulator's
    frames (N, T+1, ...): ``{"model": {metric: ...}, <floor>: {...}}``."""
    n, horizon = model.shape[:2]
    frames = lambda x: to_model_range(torch.from_numpy(np.ascontiguousarray(x)))  # noqa: E731
    out: dict = {"model": {}, **{floor: {} for floor in FLOORS}}
    for t in range(horizon):
        truth = frames(sim[:, t + 1])
        for name, pred in zip(out, (model[:, t], sim[:, 0], tokenized), strict=True):
            for metric, values in frame_metrics(frames(pred), truth, perceptual).items():
                out[name].setdefault(metric, np.zeros((n, horizon)))[:, t] = values.numpy()
    return out


def versus_floor(margin: float, standard_error: float | None) -> str:
    """``above`` where the margin's 95% interval lies above zero, ``below`` where it lies below, and
    ``level`` otherwise; without a standard error (a single scene) the point estimate decides, so a
    margin of exactly zero (a sequence the simulator leaves still, copied perfectly) is ``level``."""
    half = Z95 * (standard_error or 0.0)
    return "above" if margin - half > 0 else "below" if margin + half < 0 else "level"


def summarise(scores: dict[str, dict[str, np.ndarray]], scenes: Sequence[str]) -> dict:
    """Per-step means, the margin over each floor per start state (positive: the model is better),
    their mean with its standard error clustered by scene, and whether the model beats the floor."""
    margins = {
        floor: {
            m: (scores["model"][m] - scores[floor][m]).mean(1) * (1 if up else -1) for m, up in HIGHER_IS_BETTER.items()
        }
        for floor in FLOORS
    }
    errors = {f: {m: clustered_standard_error(v, list(scenes)) for m, v in ms.items()} for f, ms in margins.items()}
    return {
        "per_step": {name: {m: v.mean(0).tolist() for m, v in ms.items()} for name, ms in scores.items()},
        "mean": {name: {m: float(v.mean()) for m, v in ms.items()} for name, ms in scores.items()},
        "margin_over_floor": {f: {m: float(v.mean()) for m, v in ms.items()} for f, ms in margins.items()},
        "margin_standard_error": errors,
        # per start state, in the order of the subset's start_states: two runs from the same start
        # states compare paired (roboscape.eval.paired)
        "margin_per_start_state": {f: {m: v.tolist() for m, v in ms.items()} for f, ms in margins.items()},
        "beats_floor": {f: {m: bool(v.mean() > 0) for m, v in ms.items()} for f, ms in margins.items()},
        "versus_floor_95": {
            f: {m: versus_floor(float(v.mean()), errors[f][m]) for m, v in ms.items()} for f, ms in margins.items()
        },
    }


def opposite_extremes(finals: dict[str, np.ndarray]) -> dict[str, float]:
    """Per axis, the mean absolute difference of the final frames (N, H, W, 3) under its two
    extremes, in [0, 1] pixel units (an action-blind model scores 0)."""
    return {
        axis: float(
            np.abs(
                finals[f"+{axis} at trained extreme"].astype(np.float32) - finals[f"-{axis} at trained extreme"]
            ).mean()
            / 255
        )
        for axis in AXES
    }


def measure(
    wm: WorldModel,
    tokenizer: Tokenizer,
    env: PolicyEnv,
    starts: dict[str, list[Trajectory]],
    cfg: ControllabilityConfig,
    perceptual: PerceptualDistance,
) -> tuple[dict, dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """Every sequence from every start state of each subset, in the simulator and the world model.
    Returns the result (``controllability.json``) and, per subset and sequence, the simulator's and
    the world model's uint8 frames (N, T+1, H, W, 3), the first frame included."""
    rollout = Rollout.from_settings(wm, tokenizer, cfg)  # clips actions to the trained range
    low, high = (
        np.broadcast_to(b.cpu().numpy(), (wm.cfg.action_dim,)).astype(np.float32) for b in (rollout.low, rollout.high)
    )
    hand_made = action_sequences(low, high, cfg.horizon, cfg.seed)
    result: dict = {
        "config": asdict(cfg),
        "trained_action_range": {"low": low.tolist(), "high": high.tolist()},
        "sequences": [*hand_made, RECORDED],
        "floors": FLOORS,  # name -> what it is, for the tables and figures
        "subsets": {},
    }
    media: dict = {}
    for subset, episodes in starts.items():
        recorded_steps = min(cfg.horizon, *(len(e.actions) for e in episodes))
        sequences = {k: np.tile(v, (len(episodes), 1, 1)) for k, v in hand_made.items()}
        sequences[RECORDED] = np.stack([e.actions[:recorded_steps] for e in episodes]).astype(np.float32)
        first = np.stack([e.frames[0] for e in episodes])
        block: dict = {
            "start_states": [{"scene_id": e.scene_id, "episode_seed": e.episode_seed} for e in episodes],
            "sequences": {},
        }
        finals: dict[str, dict[str, np.ndarray]] = {"simulator": {}, "world_model": {}}
        media[subset] = {}
        first_gap = 0
        for name, actions in sequences.items():
            sim = np.stack([simulate(env, e, a)[0] for e, a in zip(episodes, actions, strict=True)])
            first_gap = max(first_gap, int(np.abs(sim[:, 0].astype(np.int16) - first).max()))
            imagined = imagine(rollout, first, actions)
            model = imagined.frames
            block["sequences"][name] = {
                "steps": actions.shape[1],
                **summarise(score_sequence(model, sim, imagined.tokenized, perceptual), [e.scene_id for e in episodes]),
                "tokens": token_dynamics(
                    imagined.tokens, imagined.keep_probability, tokenize_frames(rollout.tokenizer, sim)
                ),
            }
            finals["simulator"][name], finals["world_model"][name] = sim[:, -1], model[:, -1]
            media[subset][name] = (sim, np.concatenate([first[:, None], model], axis=1))
        block["first_frame_max_abs_difference"] = first_gap
        separation = {k: opposite_extremes(v) for k, v in finals.items()}
        separation["ratio"] = {
            a: separation["world_model"][a] / separation["simulator"][a] if separation["simulator"][a] else None
            for a in AXES
        }
        block["opposite_extremes"] = separation
        block["beats_floor_on_every_sequence"] = {
            floor: all(s["beats_floor"][floor]["perceptual"] for s in block["sequences"].values()) for floor in FLOORS
        }
        verdicts = {n: s["versus_floor_95"] for n, s in block["sequences"].items()}
        block["perceptual_versus_floor_95"] = {
            floor: {
                verdict: [n for n, v in verdicts.items() if v[floor]["perceptual"] == verdict]
                for verdict in ("above", "level", "below")
            }
            for floor in FLOORS
        }
        result["subsets"][subset] = block
    return result, media
