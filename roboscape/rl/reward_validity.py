"""Reward validity (the paper's Figure 3, as numbers; rule ``reward_validity``): how well each reward
that RL in the world model can use follows task progress on real planner trajectories it never
trained on.

For one task, on the held-out in-domain episodes (the world models' split,
:func:`roboscape.data.token_windows.select_clips`) and on the out-of-domain scenes' episodes, at the
policy's rate (one step is ``frame_skip`` control steps), each reward scores every frame after the
first:

- ``rule``: the simulator's rule-based dense reward on reaching the frame (the reference);
- ``general``: Eqs. 7-9 on the real frame, with the action world model's done probability
  (teacher-forced on the episode's tokens and actions; held for ``done_steps`` as the environment
  holds it) and the episode's imagined goal;
- ``general_real_goal``: the same reward with the frame the episode really ends in (its last at the
  policy's rate) as its goal, on solved episodes only (NaN elsewhere): what a perfect imagined goal
  would give, so that the general reward's shortfall splits into the goals' part (``general``
  against it) and the perceptual similarity's own (it against ``rule``);
- ``embedding``: the learned head on the hidden states the action world model predicted the frame from;
- ``proxy``: the learned CNN on the frame.

Per reward and subset (:func:`validity`):

- **value order**: the Spearman correlation between reward and time step along each successful
  optimal trajectory -- the planner makes progress at every step, so a valid reward rises --
  averaged over trajectories, with a standard error clustered by scene;
- **agreement with the rule**: Pearson and Spearman correlation with the rule-based reward over
  every frame of every trajectory (optimal and suboptimal).

**The sparse term with the arm held** (:func:`held_arm`): the general reward's sparse half pays
where the action world model's done signal (held for the environment's ``done_steps``) passes
``sparse_threshold``, whatever the policy did.
From the trajectories' start states, the world model is rolled out for RL w. World Model's episode
length as its environment runs it, the gripper open and the arm held where it is: still (no
motion), or jittering (small Gaussian motions around no motion, the size of a fresh MLP policy's
exploration noise: ``exp(policy.arch.log_std_init)`` of the recorded actions' std). The same
actions run in the simulator from the same start states: an arm held in place moves no object, so
where the simulator solves none, every episode in which the done signal passes is a false positive
that PPO is paid for without doing the task. Per kind and subset: the share of such episodes (95%
Wilson interval), the first step it passes, the mean done probability per step, and the simulator's
solved count. A share near the one PPO logs (``success_once``) says the done signal does not tell
the policy's actions from a held arm.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from roboscape.data.frames import to_model_range
from roboscape.data.heldout_episodes import SUBSETS, Trajectory
from roboscape.models.reward_models import RewardModel
from roboscape.models.rollout import Rollout
from roboscape.models.tokenizer import Tokenizer
from roboscape.models.world_model import WorldModel
from roboscape.rl.world_model_env import GeneralReward, WMEnvConfig, held_done
from roboscape.sim.policy_io import GRIPPER
from roboscape.utils.stats import clustered_standard_error, wilson_interval

REAL_GOAL = "general_real_goal"
HELD_ARM = ("still", "jitter")  # the held-arm episodes' actions (held_arm_actions)
HELD_ARM_STATES = 16  # start states per subset of the held-arm episodes (evenly spaced over the trajectories)


@dataclass
class Rewards:
    """What scores a trajectory: the action world model and its tokenizer, and each reward's model
    (None: that reward is not scored)."""

    world_model: WorldModel
    tokenizer: Tokenizer
    general: GeneralReward | None = None
    goals: dict[tuple[str, bytes], np.ndarray] | None = None  # (scene, first frame bytes) -> imagined goal
    embedding: RewardModel | None = None
    proxy: RewardModel | None = None
    done_steps: int = WMEnvConfig.done_steps  # the general reward's done signal held as the environment holds it


@torch.no_grad()
def score(traj: Trajectory, rewards: Rewards) -> dict[str, np.ndarray]:
    """Each reward of frames 1..S of ``traj`` (see the module docstring)."""
    frames = to_model_range(torch.from_numpy(traj.frames))
    out = {"rule": traj.rule.astype(np.float64)}
    tokens = torch.cat([rewards.tokenizer.encode(chunk) for chunk in frames.split(32)]).flatten(1)
    actions = torch.cat(
        [torch.from_numpy(traj.actions), torch.zeros(1, traj.actions.shape[1])]
    )  # the last predicts nothing
    clock = torch.arange(len(tokens))[None]  # the trajectory from its episode's first frame
    predicted = rewards.world_model(tokens[None], actions[None].float(), clock=clock)
    done, features = held_done(predicted.done[:, :-1], rewards.done_steps)[0], predicted.features[0, :-1]
    if rewards.general is not None:
        key = (traj.scene_id, traj.frames[0].tobytes())
        if rewards.goals is None or key not in rewards.goals:
            raise ValueError(f"no imagined goal for the episode of {traj.scene_id} (seed {traj.episode_seed})")
        goal = to_model_range(torch.from_numpy(rewards.goals[key]))[None]
        general = rewards.general
        out["general"] = general.reward(frames[1:], done, general.features(goal)).double().numpy()
        real = general.reward(frames[1:], done, general.features(frames[-1:])).double().numpy()
        out[REAL_GOAL] = real if traj.solved else np.full_like(real, np.nan)
    if rewards.embedding is not None:
        out["embedding"] = rewards.embedding.reward(features).double().numpy()
    if rewards.proxy is not None:
        out["proxy"] = rewards.proxy.reward(frames[1:]).double().numpy()
    return out


def per_frame(trajectories: list[Trajectory], scores: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """One row per scored frame: the episode, the step, each reward."""
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "subset": t.subset,
                    "episode": n,
                    "scene_id": t.scene_id,
                    "label": t.label,
                    "solved": t.solved,
                    "step": np.arange(1, len(t.rule) + 1),
                    **s,
                }
            )
            for n, (t, s) in enumerate(zip(trajectories, scores, strict=True))
        ],
        ignore_index=True,
    )


def validity(frames: pd.DataFrame, names: Sequence[str]) -> dict:
    """Per subset and reward: value order along successful optimal trajectories, and agreement with
    the rule-based reward over every frame (see the module docstring)."""
    result: dict = {}
    for subset in SUBSETS:
        part = frames[frames["subset"] == subset]
        if part.empty:
            continue
        successful = part[part["solved"] & (part["label"] == "optimal")]
        block: dict = {}
        for name in names:
            orders, scenes = [], []
            for _, episode in successful.groupby("episode"):
                rho = episode[name].corr(episode["step"].astype(float), method="spearman")
                if len(episode) >= 3 and np.isfinite(rho):  # a constant reward has no order
                    orders.append(rho)
                    scenes.append(episode["scene_id"].iloc[0])
            block[name] = {
                "value_order": float(np.mean(orders)) if orders else None,
                "value_order_standard_error": clustered_standard_error(orders, scenes) if orders else None,
                "trajectories": len(orders),
                "pearson_with_rule": float(part[name].corr(part["rule"])),
                "spearman_with_rule": float(part[name].corr(part["rule"], method="spearman")),
                "frames": len(part),
            }
        result[subset] = {"episodes": int(part["episode"].nunique()), "rewards": block}
    return result


def start_states(trajectories: Sequence[Trajectory], n: int) -> dict[str, list[Trajectory]]:
    """Per subset, up to ``n`` of the trajectories with distinct start states (scene and seed),
    evenly spaced in their order."""
    out = {}
    for subset in SUBSETS:
        seen: dict[tuple[str, int], Trajectory] = {}
        for t in trajectories:
            if t.subset == subset:
                seen.setdefault((t.scene_id, t.episode_seed), t)
        pool = list(seen.values())
        if pool:
            spaced = np.linspace(0, len(pool) - 1, min(n, len(pool))).round().astype(int)
            out[subset] = [pool[i] for i in np.unique(spaced)]
    return out


def held_arm_actions(
    kind: str, n: int, steps: int, std: np.ndarray, rng: np.random.Generator, jitter: float
) -> np.ndarray:
    """Actions (n, steps, 7) that hold the arm where it is, the gripper open: ``still``, no motion;
    ``jitter``, Gaussian end-effector noise around no motion whose std is ``jitter`` times ``std``,
    the recorded actions' per-dimension standard deviation."""
    actions = np.zeros((n, steps, 7), np.float32)
    actions[..., GRIPPER] = 1.0  # open, as at the start of every recording
    if kind == "jitter":
        actions[..., :GRIPPER] += rng.normal(size=(n, steps, GRIPPER)) * jitter * std[:GRIPPER]
    elif kind != "still":
        raise ValueError(f"unknown held-arm actions {kind!r}; choose one of {HELD_ARM}")
    return actions


@torch.no_grad()
def held_arm(
    world_model: WorldModel,
    tokenizer: Tokenizer,
    starts: dict[str, list[Trajectory]],
    env: WMEnvConfig,
    threshold: float,
    std: np.ndarray,
    solved: Callable[[Trajectory, np.ndarray], bool],
    jitter: float,
    seed: int = 0,
) -> dict:
    """The action world model's done signal from each subset's start states with the arm held (see
    the module docstring): each of :data:`HELD_ARM`'s action kinds for ``env.episode_steps`` steps,
    ``env.num_envs`` episodes at a time, with the environment's rollout settings and its done signal
    held for ``env.done_steps``; ``threshold``: the sparse term's; ``std``: the recorded actions'
    per-dimension std; ``solved``: whether the simulator solves a start state's task under actions
    (T, 7); ``jitter``: jitter's std as a share of ``std`` (a fresh policy's exploration noise)."""
    rollout = Rollout.from_settings(world_model, tokenizer, env)
    rng = np.random.default_rng(seed)
    result: dict = {kind: {} for kind in HELD_ARM}
    for kind in HELD_ARM:
        for subset, episodes in starts.items():
            actions = held_arm_actions(kind, len(episodes), env.episode_steps, std, rng, jitter)
            done = []
            for chunk in range(0, len(episodes), env.num_envs):
                batch = episodes[chunk : chunk + env.num_envs]
                rollout.reset(to_model_range(torch.from_numpy(np.stack([e.frames[0] for e in batch]))))
                steps = [
                    rollout.step(torch.from_numpy(actions[chunk : chunk + len(batch), t])).done.cpu()
                    for t in range(env.episode_steps)
                ]
                done.append(torch.stack(steps, 1))
            done = torch.cat(done).double()
            passed = (held_done(done, env.done_steps) >= threshold).numpy()
            fired = passed.any(1)
            low, high = wilson_interval(int(fired.sum()), len(fired))
            result[kind][subset] = {
                "start_states": len(fired),
                "done_passed": int(fired.sum()),
                "share": float(fired.mean()),
                "share_95": [low, high],
                "first_step_mean": float(passed[fired].argmax(1).mean() + 1) if fired.any() else None,
                "mean_done_per_step": done.mean(0).tolist(),
                "solved_in_simulator": int(sum(solved(e, a) for e, a in zip(episodes, actions, strict=True))),
            }
    return {
        "steps": env.episode_steps,
        "threshold": threshold,
        "done_steps": env.done_steps,
        "jitter_std": jitter,
        "kinds": result,
    }
