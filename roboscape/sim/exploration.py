"""Exploratory trajectories: the fourth kind of recording, made to cover the policy's action space.

Planner trajectories, optimal or suboptimal, move the arm smoothly between waypoints: a world model
trained only on them never sees an end-effector held at the controller's bound, pushed into the
edge of the workspace, or shaken at random -- and a policy in training sends exactly such actions.
An exploratory trajectory runs a random prefix of the task's optimal plan (so it starts from
states the planner reaches: above the object, holding it, pushing it; or, with the config's
``explore_from_rest`` probability, none: the initial pose, see ``prefix_length``) and then ``n`` exploratory
actions, each held for ``hold`` control steps (the policy's and the world model's rate), made of
segments of these kinds (those the config's ``explore_segments`` names; by default all but jitter):

- ``extreme``: one translation axis at the bound, either sign, the rest still (the controllability
  rule's "at trained extreme" sequences);
- ``uniform``: independent uniform actions in the box, the gripper uniform in [-1, 1] too (its
  "uniform random in range");
- ``walk``: a random walk, each action the previous plus Gaussian noise, clipped to the box;
- ``still``: no motion (its "no motion" and gripper sequences: the arm must stay put);
- ``jitter``: independent Gaussian actions around no motion, their std ``jitter`` of the bounds,
  clipped to the box, the gripper held: the small motions about a held pose that a policy's
  exploration noise makes. Made to teach the done signal that a trembling arm solves nothing; in
  the world model's rollouts it made no difference, and it is off by default (docs/rl-history.md,
  "Jitter in the recordings, and the done signal held").

Bounds are in the controller's normalised units per control step: translation ``bound`` (1: the
controller's own bound, 0.1 m per control step), rotation ``rotation_bound``. Gripper commands are
held through every segment but ``uniform`` ones and flipped between segments with probability
``GRIPPER_FLIP``.

An axis held at the bound soon pushes the arm into the edge of its reach or onto the table, and the
segment then goes on holding it there: many such actions in the data move nothing, and a world model
learns "at the bound, nothing moves" (docs/controllability-history.md). :func:`explore` can end an
extreme segment at the first action that moves the arm less than a threshold along its axis
(``stall``), and goes on with the next segment: the arm's answer at the edge is still recorded,
once per segment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

SEGMENTS = ("extreme", "uniform", "walk", "still", "jitter")
# the kinds drawn by default (the config's explore_segments): jitter in the recordings was measured
# and left out (docs/rl-history.md, "Jitter in the recordings, and the done signal held")
DEFAULT_SEGMENTS = ("extreme", "uniform", "walk", "still")
# exploratory actions per segment, inclusive: the default of the config's explore_segment_length
SEGMENT_LENGTH = (2, 6)
GRIPPER_FLIP = 0.3
WALK_SIGMA = 0.25  # random-walk step, as a fraction of the bounds
JITTER = 0.4  # jitter's std, as a fraction of the bounds: the default of the config's explore_jitter


def check_kinds(kinds: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``kinds`` as a tuple; a ValueError unless it names at least one of :data:`SEGMENTS`, each once."""
    kinds = tuple(kinds)
    unknown = sorted(set(kinds) - set(SEGMENTS))
    if not kinds or unknown or len(set(kinds)) < len(kinds):
        raise ValueError(f"exploratory segments must be distinct kinds of {SEGMENTS}, got {list(kinds)}")
    return kinds


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


@dataclass(frozen=True)
class Segment:
    """One segment of exploratory actions: its kind, its actions (length, 7), and for an extreme
    segment the translation axis held at the bound and its sign (None and 0 otherwise)."""

    kind: str
    actions: np.ndarray
    axis: int | None = None
    sign: float = 0.0


def exploratory_segments(
    n: int,
    bound: float,
    rotation_bound: float,
    gripper: float,
    rng: np.random.Generator,
    segment_length: tuple[int, int] = SEGMENT_LENGTH,
    open_extreme: bool = False,
    open_length: int | None = None,
    kinds: tuple[str, ...] = DEFAULT_SEGMENTS,
    jitter: float = JITTER,
) -> Iterator[Segment]:
    """The segments of :func:`exploratory_actions`, drawn one at a time from ``rng`` as they are
    asked for, ``n`` actions in all (the last segment cut at ``n``), each of a kind drawn uniformly
    from ``kinds``. ``open_length``: with ``open_extreme``, the opening segment's length instead of
    the drawn one (which is still drawn, so the segments after it are those of the drawn length's
    stream)."""
    low, high_length = check_segment_length(segment_length)
    kinds = check_kinds(kinds)
    high = np.array([bound] * 3 + [rotation_bound] * 3, dtype=np.float32)
    arm = np.zeros(6, np.float32)
    drawn = 0
    while drawn < n:
        kind = kinds[rng.integers(len(kinds))]
        opening = open_extreme and not drawn
        if opening:
            kind = "extreme"
        length = int(rng.integers(low, high_length + 1))
        if opening and open_length is not None:
            length = open_length
        if rng.random() < GRIPPER_FLIP:
            gripper = -gripper
        if kind in ("extreme", "still"):
            arm = np.zeros(6, np.float32)
        axis, sign = None, 0.0
        if kind == "extreme":
            sign = float(rng.choice([-1.0, 1.0]))  # before the axis: the draws of earlier recordings
            axis = int(rng.integers(3))
            arm[axis] = bound * sign
        actions = []
        for _ in range(min(length, n - drawn)):
            grip = gripper
            if kind == "uniform":
                arm = rng.uniform(-high, high).astype(np.float32)
                grip = float(rng.uniform(-1.0, 1.0))
            elif kind == "walk":
                arm = np.clip(arm + rng.normal(0.0, WALK_SIGMA, 6) * high, -high, high).astype(np.float32)
            elif kind == "jitter":
                arm = np.clip(rng.normal(0.0, jitter, 6) * high, -high, high).astype(np.float32)
            actions.append(np.concatenate([arm, [grip]]).astype(np.float32))
        drawn += len(actions)
        yield Segment(kind, np.stack(actions), axis, sign)


def exploratory_actions(
    n: int,
    bound: float,
    rotation_bound: float,
    gripper: float,
    rng: np.random.Generator,
    segment_length: tuple[int, int] = SEGMENT_LENGTH,
    open_extreme: bool = False,
    kinds: tuple[str, ...] = DEFAULT_SEGMENTS,
    jitter: float = JITTER,
) -> tuple[np.ndarray, list[str]]:
    """``n`` exploratory actions (n, 7) in normalised controller units, and the segment kind of each.

    Each segment's length is drawn uniformly from ``segment_length`` (inclusive); the last one is cut
    at ``n``. Longer segments hold an axis at the bound, or the arm still, for longer: what the
    controllability rule's 15-step sequences ask of the world model. ``open_extreme``: the first
    segment is an extreme one (its axis, sign and length drawn as usual). Only a trajectory's first
    segment starts where the trajectory does; from the initial pose, an axis at the bound moves the
    arm, where from a later segment's start it is often already at the edge of its reach."""
    segments = list(
        exploratory_segments(
            n, bound, rotation_bound, gripper, rng, segment_length, open_extreme, kinds=kinds, jitter=jitter
        )
    )
    return np.concatenate([s.actions for s in segments]), [s.kind for s in segments for _ in s.actions]


def explore(
    segments: Iterator[Segment], n: int, act: Callable[[np.ndarray], np.ndarray], stall: float = 0.0
) -> list[int]:
    """Send ``n`` actions of ``segments`` to ``act``, which holds one on the arm and returns how far
    the TCP moved (3,) in metres, along the controller's translation axes; returns the index of the
    segment each action came from. ``stall`` > 0: an extreme segment ends after the first action
    that moves the TCP less than ``stall`` in any direction (the arm has stopped), and the next
    segment starts; ``segments`` must then hold enough of them (at least ``n``). 0: every segment
    runs its length. The distance is the whole move, not the move along the held axis: an arm whose
    commanded axis is blocked may still move, as one pressed down on the table swings out along it,
    and that motion is what the segment is there to record."""
    sent: list[int] = []
    for index, segment in enumerate(segments):
        for action in segment.actions:
            if len(sent) == n:
                return sent
            moved = act(action)
            sent.append(index)
            if stall > 0 and segment.kind == "extreme" and np.linalg.norm(moved) < stall:
                break
    if len(sent) < n:
        raise ValueError(f"the segments held {len(sent)} actions, {n} were asked for")
    return sent
