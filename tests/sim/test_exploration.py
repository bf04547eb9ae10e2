"""Exploratory trajectories: their actions are what they claim, and a recorded one is kept, counted
and replays exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from roboscape.sim.catalogue import build_catalogue
from roboscape.sim.exploration import (
    DEFAULT_SEGMENTS,
    SEGMENTS,
    Segment,
    exploratory_actions,
    exploratory_segments,
    explore,
    prefix_length,
)
from roboscape.sim.generator import GeneratorConfig
from roboscape.sim.policy_io import GRIPPER


def test_exploratory_actions_stay_in_their_bounds_and_cover_every_kind():
    actions, kinds = exploratory_actions(400, 0.8, 0.2, 1.0, np.random.default_rng(0), kinds=SEGMENTS)
    assert actions.shape == (400, 7) and actions.dtype == np.float32 and len(kinds) == 400
    assert set(kinds) == set(SEGMENTS)
    assert np.abs(actions[:, :3]).max() <= 0.8 + 1e-6
    assert np.abs(actions[:, 3:6]).max() <= 0.2 + 1e-6
    assert np.abs(actions[:, GRIPPER]).max() <= 1.0
    extreme = actions[np.array(kinds) == "extreme"]
    # one translation axis exactly at the bound, nothing else moving
    assert np.all(np.count_nonzero(extreme[:, :6], axis=1) == 1)
    assert np.allclose(np.abs(extreme[:, :3]).max(1), 0.8)
    assert not actions[np.array(kinds) == "still", :6].any()
    # the gripper is held through every segment but uniform ones: only fully open or closed
    held = actions[np.array(kinds) != "uniform", GRIPPER]
    assert set(np.unique(held)) <= {-1.0, 1.0}


def test_jitter_is_small_gaussian_motion_around_a_held_pose_with_the_configured_std():
    actions, kinds = exploratory_actions(4000, 0.8, 0.2, 1.0, np.random.default_rng(1), kinds=("jitter",), jitter=0.3)
    assert set(kinds) == {"jitter"}
    arm = actions[:, :6]
    # every arm dimension moves around no motion, with the configured share of its bound as std (a few
    # actions clipped to the bounds: 0.3 is 3.3 stds inside them)
    assert np.all(np.abs(arm.mean(0)) < 0.02 * np.array([0.8] * 3 + [0.2] * 3))
    assert np.allclose(arm.std(0), 0.3 * np.array([0.8] * 3 + [0.2] * 3), rtol=0.05)
    assert np.abs(arm[:, :3]).max() <= 0.8 + 1e-6 and np.abs(arm[:, 3:]).max() <= 0.2 + 1e-6
    assert np.abs(np.corrcoef(arm[1:, 0], arm[:-1, 0])[0, 1]) < 0.05  # independent from action to action
    assert set(np.unique(actions[:, GRIPPER])) <= {-1.0, 1.0}


def test_only_the_configured_kinds_of_segment_are_drawn():
    _, kinds = exploratory_actions(400, 1.0, 0.25, 1.0, np.random.default_rng(2), kinds=("still", "walk"))
    assert set(kinds) == {"still", "walk"}
    for bad in ((), ("still", "still"), ("shake",)):
        with pytest.raises(ValueError, match="distinct kinds"):
            GeneratorConfig(explore_segments=bad)
    with pytest.raises(ValueError, match="explore_jitter"):
        GeneratorConfig(explore_jitter=0.0)
    assert GeneratorConfig(explore_segments=["jitter"]).explore_segments == ("jitter",)


def test_exploratory_actions_are_seeded():
    a, _ = exploratory_actions(50, 1.0, 0.25, -1.0, np.random.default_rng(3))
    b, _ = exploratory_actions(50, 1.0, 0.25, -1.0, np.random.default_rng(3))
    c, _ = exploratory_actions(50, 1.0, 0.25, -1.0, np.random.default_rng(4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_open_extreme_makes_the_first_segment_an_axis_at_the_bound_over_every_axis_and_sign():
    openings = set()
    for seed in range(60):
        actions, kinds = exploratory_actions(8, 0.8, 0.2, 1.0, np.random.default_rng(seed), open_extreme=True)
        assert kinds[0] == "extreme" and np.count_nonzero(actions[0, :6]) == 1
        axis = int(np.flatnonzero(actions[0, :3])[0])
        openings.add((axis, float(np.sign(actions[0, axis]))))
        assert np.isclose(abs(actions[0, axis]), 0.8)
    assert len(openings) == 6  # each axis, both signs
    # without it, first segments are of every kind
    assert {exploratory_actions(8, 0.8, 0.2, 1.0, np.random.default_rng(s))[1][0] for s in range(60)} == set(
        DEFAULT_SEGMENTS
    )


@pytest.mark.slow
def test_an_exploratory_trajectory_is_recorded_counted_and_replays_exactly(tmp_path):
    from roboscape.sim.replay import replay_shard
    from roboscape.sim.shard import generate_shard
    from roboscape.sim.trajectory_io import TrajectoryShard

    catalogue = build_catalogue(0, ["pick_place"], 1, 0)
    cfg = GeneratorConfig(n_optimal=0, n_suboptimal=0, n_exploratory=1, explore_actions=6, image_size=32)
    paths = [tmp_path / name for name in ("s.h5", "s.json", "s.summary.json")]
    summary = generate_shard(catalogue, "pick_place", 0, 1, cfg, *paths, progress=False)
    assert summary["requested"] == {"optimal": 0, "suboptimal": 0, "exploratory": 1}
    assert summary["kept"] == {"exploratory": 1}
    with TrajectoryShard(paths[0]) as shard:
        (meta,) = shard.episodes
        actions = shard.group(0)["actions"][()]
    assert meta["label"] == "exploratory"
    explored = actions[meta["explore_from"] :]
    assert len(explored) == cfg.explore_actions * cfg.explore_hold
    # each exploratory action is held for explore_hold control steps
    blocks = explored.reshape(cfg.explore_actions, cfg.explore_hold, 7)
    assert np.array_equal(blocks, np.repeat(blocks[:, :1], cfg.explore_hold, axis=1))
    assert np.abs(explored[:, :3]).max() <= cfg.explore_bound
    (replayed,) = replay_shard(paths[0], labels=("exploratory",))
    assert replayed["object_position_error_m"] == 0.0


@pytest.mark.slow
def test_a_trajectory_exploring_from_rest_opens_at_the_bound_when_asked(tmp_path):
    from roboscape.sim.shard import generate_shard
    from roboscape.sim.trajectory_io import TrajectoryShard

    catalogue = build_catalogue(0, ["push"], 1, 0)
    opening, whole = {}, {}
    for hold in (False, True):
        cfg = GeneratorConfig(
            n_optimal=0, n_suboptimal=0, n_exploratory=1, explore_actions=16, image_size=32,
            explore_from_rest=1.0, explore_rest_extreme=True, explore_stall_mm=0.0, explore_rest_hold=hold,
        )  # fmt: skip
        paths = [tmp_path / f"{hold}{name}" for name in ("s.h5", "s.json", "s.summary.json")]
        generate_shard(catalogue, "push", 0, 1, cfg, *paths, progress=False)
        with TrajectoryShard(paths[0]) as shard:
            (meta,) = shard.episodes
            actions = shard.group(0)["actions"][:: cfg.explore_hold]
        assert meta["explore_from"] == 0  # the initial pose
        first = opening[hold] = actions[0]
        assert np.count_nonzero(first[:6]) == 1 and np.isclose(np.abs(first[:3]).max(), cfg.explore_bound)
        whole[hold] = bool(np.all(actions == first))
    # held (no stall rule here): every exploratory action is the opening one, the axis and sign as drawn;
    # drawn, the opening is 2-6 actions and other segments follow
    assert np.array_equal(opening[True], opening[False]) and whole == {True: True, False: False}


@pytest.mark.slow
def test_a_trajectory_with_stalled_segments_ended_is_recorded_and_replays_exactly(tmp_path):
    from roboscape.sim.replay import replay_shard
    from roboscape.sim.shard import generate_shard
    from roboscape.sim.trajectory_io import TrajectoryShard

    catalogue = build_catalogue(0, ["push"], 1, 0)
    explored = {}
    for stall in (0.0, 1000.0):  # no held action moves the arm a metre: every extreme segment ends after one
        cfg = GeneratorConfig(
            n_optimal=0, n_suboptimal=0, n_exploratory=1, explore_actions=4, image_size=32,
            explore_from_rest=1.0, explore_rest_extreme=True, explore_stall_mm=stall,
        )  # fmt: skip
        paths = [tmp_path / f"{stall}{name}" for name in ("s.h5", "s.json", "s.summary.json")]
        generate_shard(catalogue, "push", 0, 1, cfg, *paths, progress=False)
        with TrajectoryShard(paths[0]) as shard:
            (meta,) = shard.episodes
            explored[stall] = shard.group(0)["actions"][()]
        assert meta["explore_from"] == 0 and len(explored[stall]) == cfg.explore_actions * cfg.explore_hold
        (replayed,) = replay_shard(paths[0], labels=("exploratory",))
        assert replayed["object_position_error_m"] == 0.0
    cut, whole = explored[1000.0][:: cfg.explore_hold], explored[0.0][:: cfg.explore_hold]
    assert np.array_equal(cut[0], whole[0]) and np.count_nonzero(cut[0, :6]) == 1  # the same opening at the bound
    assert not np.array_equal(cut, whole)  # the opening segment (2-6 actions long) ended after one action


def test_an_opening_of_a_given_length_leaves_the_segments_after_it_as_drawn():
    for seed in range(20):
        args = (40, 1.0, 0.25, 1.0)
        drawn = list(exploratory_segments(*args, np.random.default_rng(seed), open_extreme=True))
        held = list(exploratory_segments(*args, np.random.default_rng(seed), open_extreme=True, open_length=16))
        assert held[0].kind == "extreme" and len(held[0].actions) == 16
        assert (held[0].axis, held[0].sign) == (drawn[0].axis, drawn[0].sign)
        assert np.array_equal(held[0].actions[0], drawn[0].actions[0])
        assert np.array_equal(held[1].actions[: len(drawn[1].actions)], drawn[1].actions[: len(held[1].actions)])


def test_segments_one_at_a_time_are_the_exploratory_actions():
    for seed, open_extreme in itertools.product(range(20), (False, True)):
        args = (37, 0.8, 0.2, -1.0)
        actions, kinds = exploratory_actions(*args, np.random.default_rng(seed), open_extreme=open_extreme)
        segments = list(exploratory_segments(*args, np.random.default_rng(seed), open_extreme=open_extreme))
        assert np.array_equal(np.concatenate([s.actions for s in segments]), actions)
        assert [s.kind for s in segments for _ in s.actions] == kinds
        for s in segments:
            if s.kind == "extreme":  # the axis and sign it names are the ones at the bound
                assert np.all(s.actions[:, s.axis] == 0.8 * s.sign) and s.sign in (-1.0, 1.0)
            else:
                assert s.axis is None


class ReachLimitedArm:
    """A fake arm for :func:`explore`: the TCP moves 0.1 m per unit of action along each axis, within
    a box of +-0.15 m around where it starts; it records what it was sent and how far it moved."""

    def __init__(self):
        self.position, self.sent, self.moves = np.zeros(3), [], []

    def __call__(self, action: np.ndarray) -> np.ndarray:
        before = self.position.copy()
        self.position = np.clip(self.position + 0.1 * action[:3], -0.15, 0.15)
        self.sent.append(action)
        self.moves.append(self.position - before)
        return self.moves[-1]


def drawn(seed: int, n: int, into: list):
    """The segments of one seed, each kept in ``into`` as :func:`explore` draws it."""
    for segment in exploratory_segments(n, 1.0, 0.25, 1.0, np.random.default_rng(seed), (3, 6)):
        into.append(segment)
        yield segment


def test_explore_ends_an_extreme_segment_at_its_first_stalled_action():
    pushing_at_the_edge = {0.0: 0, 0.001: 0}  # extreme actions that moved the arm less than 1 mm
    for seed in range(30):
        arm, kept = ReachLimitedArm(), []  # stall 0: every segment runs its length, as exploratory_actions has it
        explore(drawn(seed, 40, kept), 40, arm)
        actions, _ = exploratory_actions(40, 1.0, 0.25, 1.0, np.random.default_rng(seed), (3, 6))
        assert np.array_equal(np.stack(arm.sent), actions)
        for stall in pushing_at_the_edge:
            arm, kept = ReachLimitedArm(), []
            index = explore(drawn(seed, 40 * 6, kept), 40, arm, stall=stall)
            assert len(index) == len(arm.sent) == 40 and index == sorted(index)
            for j, segment in enumerate(kept[: index[-1] + 1]):
                sent = [i for i, k in enumerate(index) if k == j]
                assert np.array_equal(np.stack([arm.sent[i] for i in sent]), segment.actions[: len(sent)])
                if segment.kind != "extreme":
                    assert len(sent) == len(segment.actions) or j == index[-1]
                    continue
                moved = [np.linalg.norm(arm.moves[i]) for i in sent]
                pushing_at_the_edge[stall] += sum(m < 0.001 for m in moved)
                if stall:  # it ran while the arm moved, and ended at its first stalled action
                    assert all(m >= stall for m in moved[:-1])
                    assert len(sent) == len(segment.actions) or moved[-1] < stall or j == index[-1]
    assert pushing_at_the_edge[0.001] < pushing_at_the_edge[0.0] / 2


class TableArm(ReachLimitedArm):
    """A :class:`ReachLimitedArm` over a table: pressed down on it (z at the box's floor), it swings
    out along it, 2 cm in x per held action, as the Panda does under a held -z."""

    def __call__(self, action: np.ndarray) -> np.ndarray:
        moved = super().__call__(action)
        if action[2] < 0 and self.position[2] == -0.15 and moved[2] == 0:
            self.position[0] += 0.02
            moved = self.moves[-1] = moved + np.array([0.02, 0.0, 0.0])
        return moved


def test_an_arm_the_held_axis_still_moves_has_not_stalled():
    down = Segment("extreme", np.tile(np.array([0, 0, -1.0, 0, 0, 0, 1.0]), (6, 1)), axis=2, sign=-1.0)
    still = Segment("still", np.tile(np.array([0, 0, 0, 0, 0, 0, 1.0]), (6, 1)))
    arm = TableArm()  # down 0.1, down 0.05 to the table, then swinging out along it
    assert explore(iter([down, still]), 6, arm, stall=0.001) == [0] * 6  # it never stopped: -z held throughout
    assert [round(m[0], 3) for m in arm.moves] == [0.0, 0.0, 0.02, 0.02, 0.02, 0.02]
    arm = ReachLimitedArm()  # no table: at the box's floor it stops, and the segment ends there
    assert explore(iter([down, still]), 6, arm, stall=0.001) == [0, 0, 0, 1, 1, 1]


def test_explore_asks_for_enough_segments():
    with pytest.raises(ValueError, match="held 3 actions, 5 were asked for"):
        explore(drawn(0, 3, []), 5, ReachLimitedArm())
    with pytest.raises(ValueError, match="explore_stall_mm"):
        GeneratorConfig(explore_stall_mm=-1.0)


def test_segments_are_as_long_as_the_config_says():
    length = 5
    _, kinds = exploratory_actions(400, 1.0, 0.25, 1.0, np.random.default_rng(1), segment_length=(length, length))
    # runs of one kind are whole segments (two segments of a kind in a row make one run)
    runs = [len(list(group)) for _, group in itertools.groupby(kinds)]
    assert all(run % length == 0 for run in runs) and len(runs) > 10
    with pytest.raises(ValueError, match="1 <= min <= max"):
        GeneratorConfig(explore_segment_length=[6, 2])
    assert GeneratorConfig(explore_segment_length=[3, 9]).explore_segment_length == (3, 9)


def test_a_share_of_exploratory_trajectories_explores_from_rest():
    seeds = range(2000)

    def prefixes(from_rest: float) -> tuple[np.ndarray, list]:
        """The prefix of each seed, and each trajectory's stream's next draw (its first action's)."""
        rngs = [np.random.default_rng(s) for s in seeds]
        drawn = np.array([prefix_length(5, rng, from_rest, s) for rng, s in zip(rngs, seeds, strict=True)])
        return drawn, [rng.random() for rng in rngs]

    uniform, after_uniform = prefixes(0.0)
    assert np.array_equal(uniform, [np.random.default_rng(s).integers(6) for s in seeds])  # as before the option
    half, after_half = prefixes(0.5)
    assert after_half == after_uniform  # the exploratory actions do not change
    moved = half != uniform
    assert np.all(half[moved] == 0)  # a changed prefix is the initial pose
    assert 0.45 < (half == 0).mean() - (uniform == 0).mean() / 2 < 0.55  # 1/2 + 1/2 x 1/6 start at rest
    assert np.all(prefixes(1.0)[0] == 0)
    with pytest.raises(ValueError, match="probability"):
        GeneratorConfig(explore_from_rest=1.5)
