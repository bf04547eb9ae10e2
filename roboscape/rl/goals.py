"""Imagined goals (rule ``imagine_goals``; the paper's Eq. 6): for every real initial state the
world-model environment starts from, the text world model rolls out from its frame under its
scene's instruction until its done signal reaches ``threshold`` (or ``max_steps``); that first done
frame is the goal the general reward compares frames with.

Initial states are the first frames of the recorded attempts at the task (optimal and suboptimal
episodes, not exploratory ones) of the pool's scenes (each episode starts from its own seeded
layout). The goals file (``goals.h5``) holds, row for row::

    initial       (N, H, W, 3) uint8   the real first frame
    goal          (N, H, W, 3) uint8   the imagined goal
    final         (N, H, W, 3) uint8   the recorded episode's last frame (the planner's end state)
    initial_decoded, success_decoded
                  (N, H, W, 3) uint8   the first frame, and the frame at the recorded episode's first
                                       success, through the tokenizer, decoded as the rollout decodes
                                       (the first frame as the decoder's context)
    steps         (N,)  int            world-model steps to the goal (max_steps if never done)
    reached       (N,)  bool           whether the done signal reached the threshold
    solved        (N,)  bool           whether the recorded episode ended solved
    attrs: scene_id, split, instruction, label (JSON lists), threshold, max_steps

**Fidelity** (:func:`goal_fidelity`): on the states whose recorded episode ended solved, the
perceptual distance from the imagined goal to the real final frame, against the distance from the
initial frame to it -- the floor a useful goal must beat, as eval_wm's copy floor is. Every goal is
a decoded frame and pays what decoding costs, which the real initial frame does not; two decoded
references separate that cost from the imagination's: the initial frame decoded (the goal of a
model that imagines nothing, as controllability's tokenized copy floor) and the real frame at the
recorded episode's first success decoded (a perfect Eq. 6 goal, the first done frame; the planner's
episodes go on after it, letting go and withdrawing, so it is not the final frame).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from roboscape.data.frames import to_model_range, to_uint8
from roboscape.models.control import TextControl
from roboscape.models.perceptual import PerceptualDistance
from roboscape.models.rollout import Rollout
from roboscape.models.tokenizer import DecoderContext, Tokenizer
from roboscape.models.world_model import WorldModel
from roboscape.sim.trajectory_io import EXPLORATORY, TrajectoryShard
from roboscape.utils.h5 import open_h5
from roboscape.utils.io import atomic_path
from roboscape.utils.stats import clustered_standard_error

STRINGS = ("scene_id", "split", "instruction", "label")
FRAMES = ("initial", "goal", "final", "initial_decoded", "success_decoded")


@dataclass
class GoalConfig:
    threshold: float = 0.5
    """the text world model's done probability that marks the goal frame (theta of Eq. 6)"""
    max_steps: int = 50
    """world-model steps before giving up (the last frame is then the goal)"""
    batch_size: int = 16
    """initial states imagined together"""
    temperature: float = 0.0
    """sampling temperature of the text world model's tokens (0: the most likely tokens, greedy)"""
    seed: int = 0
    """seed of the sampled tokens (temperature > 0)"""
    guidance: float = 1.0
    """classifier-free guidance by the instruction (1: none; above 1 what the task changes is
    amplified against what any task would): needs a text world model trained with text dropout"""


def initial_states(shards: Sequence[str | Path], scene_ids: Sequence[str], view: str = "third_view") -> dict:
    """The first and last frames of every recorded episode of ``scene_ids`` in ``shards``, the
    frame after the step the simulator first counted success (``success``; the last frame if it
    never did: what a perfect Eq. 6 goal shows), with their scene, split, instruction, label and
    whether they ended solved."""
    wanted = set(scene_ids)
    out: dict[str, list] = {k: [] for k in ("initial", "success", "final", "solved", *STRINGS)}
    for path in shards:
        with TrajectoryShard(path) as shard:
            for i, meta in enumerate(shard.episodes):
                if meta["scene_id"] not in wanted or meta["label"] == EXPLORATORY:
                    continue
                group = shard.group(i)
                frames, success = group[f"obs/sensor_data/{view}/rgb"], group["success"][()]
                out["initial"].append(frames[0])
                out["success"].append(frames[int(np.argmax(success)) + 1] if success.any() else frames[-1])
                out["final"].append(frames[-1])
                out["solved"].append(bool(meta["success"]))
                for key in STRINGS:
                    out[key].append(meta[key])
    if not out["initial"]:
        raise ValueError(f"no recorded episode of scenes {sorted(wanted)}")
    return {k: np.stack(v) if k in ("initial", "success", "final", "solved") else v for k, v in out.items()}


@torch.no_grad()
def imagine_goals(
    text_wm: WorldModel,
    tokenizer: Tokenizer,
    text: TextControl,
    instruction_rows: dict[str, int],
    states: dict,
    cfg: GoalConfig,
) -> dict:
    """Eq. 6 for every initial state: ``states`` from :func:`initial_states`; adds ``goal``,
    ``steps``, ``reached`` and the decoded references ``initial_decoded`` and ``success_decoded``."""
    if text_wm.cfg.control != "text":
        raise ValueError("goals are imagined by the text world model")
    rollout = Rollout(text_wm, tokenizer, temperature=cfg.temperature, seed=cfg.seed, guidance=cfg.guidance)
    out: dict[str, list] = {k: [] for k in ("goal", "steps", "reached", "initial_decoded", "success_decoded")}
    for start in range(0, len(states["initial"]), cfg.batch_size):
        batch = slice(start, start + cfg.batch_size)
        frames = to_model_range(torch.from_numpy(states["initial"][batch]))
        rows = torch.tensor([instruction_rows[t] for t in states["instruction"][batch]])
        goal, steps, reached = rollout.imagine_goal(
            frames, *text(rows), threshold=cfg.threshold, max_steps=cfg.max_steps
        )
        # the initial frames' tokens serve both as the decoder's context and as the first reference
        device = next(tokenizer.parameters()).device
        initial = tokenizer.encode(frames.to(device))
        context = tokenizer.decoder_context(frames.to(device), initial)
        references = (
            to_uint8(tokenizer.decode_tokens(initial, context)),
            decoded(tokenizer, states["success"][batch], context),
        )
        for key, value in zip(
            ("goal", "steps", "reached", "initial_decoded", "success_decoded"),
            (to_uint8(goal), steps, reached, *references),
            strict=True,
        ):
            out[key].append(value.cpu().numpy())
    return {**states, **{k: np.concatenate(v) for k, v in out.items()}}


@torch.no_grad()
def decoded(tokenizer: Tokenizer, frames: np.ndarray, context: DecoderContext | None) -> torch.Tensor:
    """Frames (N, H, W, 3) uint8 through the tokenizer, decoded with ``context`` (the
    :meth:`~Tokenizer.decoder_context` of the frames a rollout starts from, as that rollout
    decodes; None for a per-frame decoder): (N, H, W, 3) uint8."""
    device = next(tokenizer.parameters()).device
    tokens = tokenizer.encode(to_model_range(torch.from_numpy(frames)).to(device))
    return to_uint8(tokenizer.decode_tokens(tokens, context))


def write_goals(goals: dict, path: str | Path, cfg: GoalConfig) -> None:
    with atomic_path(path) as tmp, open_h5(tmp, "w") as f:
        for key in FRAMES:
            f.create_dataset(key, data=goals[key], chunks=(1, *goals[key].shape[1:]), compression="gzip")
        for key in ("steps", "reached", "solved"):
            f.create_dataset(key, data=goals[key])
        f.attrs.update({k: json.dumps(list(goals[k])) for k in STRINGS})
        f.attrs.update(threshold=cfg.threshold, max_steps=cfg.max_steps)


def read_goals(path: str | Path) -> dict:
    """What :func:`write_goals` wrote; a file written by an older version, without some of its
    datasets, is refused by name (rule ``imagine_goals`` remakes it)."""
    keys = (*FRAMES, "steps", "reached", "solved")
    with open_h5(path) as f:
        if missing := [k for k in keys if k not in f] + [k for k in STRINGS if k not in f.attrs]:
            raise ValueError(
                f"{path} has no {', '.join(missing)}: a goals file of an older version; rerun imagine_goals"
            )
        goals = {k: f[k][()] for k in keys}
        goals.update({k: json.loads(f.attrs[k]) for k in STRINGS})
    return goals


@torch.no_grad()
def goal_fidelity(goals: dict, perceptual: PerceptualDistance, batch_size: int = 16) -> dict:
    """Per split: on the states whose recorded episode ended solved, the mean perceptual distance
    to the real final frame from the imagined goal, the initial frame and the two decoded references
    (``*_to_final``); the margin (initial minus goal: positive where the goal is closer) with its
    standard error clustered by scene and the fraction of states whose goal is closer; the margin over
    the decoded initial frame, likewise; the margin a perfect goal would have (initial minus the
    decoded first-success frame: where it is negative, no goal this tokenizer decodes can beat the
    floor); and how many goals were reached, in how many steps."""
    keys = ("goal", "initial", "initial_decoded", "success_decoded")
    dist: dict[str, list] = {k: [] for k in keys}
    for start in range(0, len(goals["goal"]), batch_size):
        final = to_model_range(torch.from_numpy(goals["final"][start : start + batch_size]))
        for key in keys:
            frames = to_model_range(torch.from_numpy(goals[key][start : start + batch_size]))
            dist[key].append(perceptual(frames, final))
    d = {k: torch.cat(v).double().numpy() for k, v in dist.items()}
    result = {}
    for split in sorted(set(goals["split"])):
        in_split = np.array(goals["split"]) == split
        mask = in_split & goals["solved"]
        scenes = [s for s, m in zip(goals["scene_id"], mask, strict=True) if m]
        margins = {
            "margin": d["initial"][mask] - d["goal"][mask],
            "margin_over_decoded_initial": d["initial_decoded"][mask] - d["goal"][mask],
            "perfect_goal_margin": d["initial"][mask] - d["success_decoded"][mask],
        }
        result[split] = {
            "states": int(in_split.sum()),
            "solved_states": int(mask.sum()),
            "scenes": len(set(scenes)),
            **{f"{k}_to_final": float(d[k][mask].mean()) if mask.any() else None for k in keys},
            **{k: float(m.mean()) if mask.any() else None for k, m in margins.items()},
            **{
                f"{k}_standard_error": clustered_standard_error(m, scenes) if mask.any() else None
                for k, m in margins.items()
            },
            "fraction_goal_closer": float((margins["margin"] > 0).mean()) if mask.any() else None,
            "beats_floor": bool(margins["margin"].mean() > 0) if mask.any() else None,
            "reached": float(goals["reached"][in_split].mean()),
            "mean_steps": float(goals["steps"][in_split].mean()),
        }
    return result
