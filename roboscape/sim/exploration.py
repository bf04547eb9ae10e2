"""Exploratory trajectories: the fourth kind of recording, made to cover the policy's action space.

Planner trajectories, optimal or suboptimal, move the arm smoothly between waypoints: a world model
trained only on them never sees an end-effector held at the controller's bound, pushed into the
edge of the workspace, or shaken at random -- and a policy in training sends exactly such actions.
An exploratory trajectory runs a random prefix of the task's optimal plan (so it starts from
states the planner reaches: above the object, holding it, pushing it; or, with the config's
``explore_from_rest`` probability, none: the initial pose, see ``prefix_length``) and then ``n`` exploratory
actions, each held for ``hold`` control steps (the policy's and the world model's rate), made of
segments of four kinds:

- ``extreme``: one translation axis at the bound, either sign, the rest still (the controllability
  rule's "at trained extreme" sequences);
- ``uniform``: independent uniform actions in the box, the gripper uniform in [-1, 1] too (its
  "uniform random in range");
- ``walk``: a random walk, each action the previous plus Gaussian noise, clipped to the box;
- ``still``: no motion (its "no motion" and gripper sequences: the arm must stay put).

Bounds are in the controller's normalised units per control step: translation ``bound`` (1: the
controller's own bound, 0.1 m per control step), rotation ``rotation_bound``. Gripper commands are
held through ``extreme``, ``walk`` and ``still`` segments and flipped between segments with probability
``GRIPPER_FLIP``.
"""

from __future__ import annotations

import numpy as np

SEGMENTS = ("extreme", "uniform", "walk", "still")
# exploratory actions per segment, inclusive: the default of the config's explore_segment_length
SEGMENT_LENGTH = (2, 6)
GRIPPER_FLIP = 0.3
WALK_SIGMA = 0.25  # random-walk step, as a fraction of the bounds


def check_segment_length(segment_length: tuple[int, int] | list[int]) -> tuple[int, int]:
    """``segment_length`` as a (min, max) tuple; a ValueError unless 1 <= min <= max."""
    low, high = segment_length
    if not 1 <= low <= high:
        raise ValueError(
            f"the exploratory segment length must be [min, max] with 1 <= min <= max, got {list(segment_length)}"
        )
    return int(low), int(high)


def prefix_length(waypoints: int, rng: np.random.Generator, from_rest: float, seed: int) -> int:
    """How many of the optimal plan's ``waypoints`` an exploratory trajectory runs before it explores:
    uniform in [0, waypoints], drawn from ``rng`` (the trajectory's own stream), or, with probability
    ``from_rest``, 0: the initial pose. A planner state is often at the edge of the arm's reach, where
    an action at the bound along that axis moves nothing; the initial pose has room on every axis,
    and it is where a policy's episodes start. The ``from_rest`` coin comes from a stream of its own
    (seeded by ``seed``) and ``rng`` is drawn from either way, so ``from_rest`` leaves the exploratory
    actions unchanged, and at 0 the prefixes too."""
    drawn = int(rng.integers(waypoints + 1))
    if from_rest > 0 and np.random.default_rng([seed, 1]).random() < from_rest:
        return 0
    return drawn


def exploratory_actions(
    n: int,
    bound: float,
    rotation_bound: float,
    gripper: float,
    rng: np.random.Generator,
    segment_length: tuple[int, int] = SEGMENT_LENGTH,
    open_extreme: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """``n`` exploratory actions (n, 7) in normalised controller units, and the segment kind of each.

    Each segment's length is drawn uniformly from ``segment_length`` (inclusive); the last one is cut
    at ``n``. Longer segments hold an axis at the bound, or the arm still, for longer: what the
    controllability rule's 15-step sequences ask of the world model. ``open_extreme``: the first
    segment is an extreme one (its axis, sign and length drawn as usual). Only a trajectory's first
    segment starts where the trajectory does; from the initial pose, an axis at the bound moves the
    arm, where from a later segment's start it is often already at the edge of its reach."""
    low, high_length = check_segment_length(segment_length)
    high = np.array([bound] * 3 + [rotation_bound] * 3, dtype=np.float32)
    actions: list[np.ndarray] = []
    kinds: list[str] = []
    arm = np.zeros(6, np.float32)
    while len(actions) < n:
        kind = SEGMENTS[rng.integers(len(SEGMENTS))]
        if open_extreme and not actions:
            kind = "extreme"
        length = int(rng.integers(low, high_length + 1))
        if rng.random() < GRIPPER_FLIP:
            gripper = -gripper
        if kind in ("extreme", "still"):
            arm = np.zeros(6, np.float32)
        if kind == "extreme":
            arm[rng.integers(3)] = bound * rng.choice([-1.0, 1.0])
        for _ in range(min(length, n - len(actions))):
            grip = gripper
            if kind == "uniform":
                arm = rng.uniform(-high, high).astype(np.float32)
                grip = float(rng.uniform(-1.0, 1.0))
            elif kind == "walk":
                arm = np.clip(arm + rng.normal(0.0, WALK_SIGMA, 6) * high, -high, high).astype(np.float32)
            actions.append(np.concatenate([arm, [grip]]).astype(np.float32))
            kinds.append(kind)
    return np.stack(actions), kinds
