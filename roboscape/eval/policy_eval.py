"""Closed-loop evaluation of a policy in ManiSkill (rule ``eval_policy``): what every cell of the
paper's tables is.

**Cells and episodes.** A cell is a policy x task x domain. In domain, its episodes run in the
scenes the policy trained in, from new initial states; out of domain, in every out-of-domain scene
of the catalogue (unseen objects and unseen object-container pairs; evaluation needs no data). The
multi-task policy (Table 2) is evaluated in domain, round robin over its scenes of several tasks.
Episode i of a cell runs in the cell's scene i mod (number of scenes) with ManiSkill episode seed
:func:`episode_seed` -- at least 2**31, so disjoint from every seed the data stage and the RL
resets draw (below 2**31). A policy's episodes, of each domain it is evaluated in
(:func:`roboscape.sim.catalogue.group_domains`), are split into shards, one job each: starting
ManiSkill's renderer is most of a small job's time, so one job runs both domains.

**An episode** runs the policy's deterministic action (its mean) for the environment's
``episode_steps`` policy steps, without stopping at success (ManiSkill's fair evaluation), and
records ``success_once`` (solved at any policy step) and ``success_at_end``. A policy that outputs
NaN fails the episode there, with the cause recorded; nothing non-finite reaches the simulator.
The same policy and seeds always give the same numbers (the CPU simulation is deterministic).

**Statistics.** Success rates per task x domain and per scene with 95% Wilson intervals and episode
counts (:func:`roboscape.eval.episode_records.summarise`).

**Interruptions.** :func:`evaluate_shard` appends each finished episode to a partial file; a job
killed mid-way and run again skips the episodes it has (runs being deterministic, the result is
the uninterrupted one).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from roboscape.sim.catalogue import DOMAINS, MULTITASK, Catalogue, SceneSpec
from roboscape.sim.policy_env import PolicyEnv
from roboscape.sim.vector_env import to_tensors

SEED_BASE = 2**31


def episode_seed(seed: int, group: str, domain: str, index: int) -> int:
    """The ManiSkill seed of a cell's episode ``index``, in [2**31, 2**32)."""
    return SEED_BASE + (zlib.crc32(f"eval|{seed}|{group}|{domain}|{index}".encode()) & 0x7FFFFFFF)


def cell_scenes(catalogue: Catalogue, group: str, domain: str, train_scenes: int) -> list[SceneSpec]:
    """The scenes of a policy group's cell: in domain, its training scenes (for the multi-task
    group, each of its scenes: a cell of Table 2 each); out of domain, the task's OOD scenes."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; choose one of {DOMAINS}")
    if domain == "ind":
        return catalogue.policy_scenes(group, train_scenes)
    if group == MULTITASK:
        raise ValueError("the multi-task policy is evaluated in domain only (Table 2)")
    return catalogue.ood_scenes(group)


@dataclass(frozen=True)
class Episode:
    index: int  # within its cell
    domain: str
    scene: SceneSpec
    seed: int


def shard_episodes(
    scenes: Sequence[SceneSpec], group: str, domain: str, episodes: int, shard: int, shards: int, seed: int = 0
) -> list[Episode]:
    """The episodes of shard ``shard`` of ``shards`` (every shards-th, from ``shard``) of a cell of ``episodes``."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} of {shards} does not exist")
    return [
        Episode(i, domain, scenes[i % len(scenes)], episode_seed(seed, group, domain, i))
        for i in range(shard, episodes, shards)
    ]


@torch.no_grad()
def run_episodes(
    policy, env: PolicyEnv, episodes: Sequence[Episode], record: int = 0, on_row: Callable[[dict], None] | None = None
) -> tuple[list[dict], list[np.ndarray]]:
    """Run ``episodes`` with the policy's deterministic actions; returns one row per episode (each
    also passed to ``on_row`` as it finishes) and the frames (T+1, H, W, 3) of the first ``record``."""
    rows, videos = [], []
    for n, ep in enumerate(episodes):
        obs, info = env.reset(options={"scene": ep.scene, "episode_seed": ep.seed})
        frames = [obs["rgb"]] if n < record else None  # only the recorded episodes keep their frames
        success_once, total, clipped, failure, steps = info["success"], 0.0, 0, None, 0
        success = info["success"]
        for _ in range(env.episode_steps):
            action = policy.act({k: v[None] for k, v in to_tensors(obs).items()}, deterministic=True).action[0]
            obs, reward, terminated, truncated, info = env.step(action.cpu().numpy())
            steps += 1
            total += reward
            clipped += info["action_clipped"]
            success = info["success"]
            success_once |= success
            if frames is not None:
                frames.append(obs["rgb"])
            if info["failure"] is not None:
                failure = info["failure"]
                success = False
                break
            if truncated:
                break
        rows.append(
            {
                "episode": ep.index,
                "task": ep.scene.task,
                "domain": ep.domain,
                "scene_id": ep.scene.scene_id,
                "ood_reason": ep.scene.ood_reason,
                "seed": ep.seed,
                "success_once": bool(success_once),
                "success_at_end": bool(success),
                "return": total,
                "steps": steps,
                "clipped_actions": clipped,
                "failure": failure,
            }
        )
        if on_row is not None:
            on_row(rows[-1])
        if frames is not None:
            videos.append(np.stack(frames))
    return rows, videos


def evaluate_shard(
    policy, env: PolicyEnv, episodes: Sequence[Episode], record: int, partial: str | Path
) -> tuple[list[dict], list[np.ndarray]]:
    """:func:`run_episodes` that resumes: finished episodes are appended to ``partial`` (JSON lines)
    and skipped when the shard runs again; the first ``record`` are always run, for their frames.
    The partial file is removed once every episode is done."""
    partial = Path(partial)
    done = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # the line a kill cut short
                continue
            done[row["episode"]] = row
    todo = [e for i, e in enumerate(episodes) if i < record or e.index not in done]
    with open(partial, "a") as fh:

        def keep(row: dict) -> None:
            fh.write(json.dumps(row) + "\n")
            fh.flush()

        rows, videos = run_episodes(policy, env, todo, record, on_row=keep)
    done.update({r["episode"]: r for r in rows})
    partial.unlink()
    return [done[e.index] for e in episodes], videos
