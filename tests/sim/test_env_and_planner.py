"""The tasks and the recorded action space, in the real simulator."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from roboscape.sim.catalogue import TASKS, build_catalogue
from roboscape.sim.env import make_env
from roboscape.sim.generator import GeneratorConfig, TrajectoryGenerator
from roboscape.sim.planner import GRIPPER_OPEN, MotionPlanner, pose_in_base

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def catalogue():
    return build_catalogue(0, list(TASKS), 1, 1)


def test_delta_action_moves_the_tcp_where_it_says(catalogue):
    """The inverse of pd_ee_delta_pose's normalisation: one commanded step lands near its target."""
    import sapien
    from transforms3d.euler import euler2quat
    from transforms3d.quaternions import qmult

    scene = catalogue.scene(catalogue.selected["push"][0])
    env = make_env(scene, image_size=32, obs_mode="state")
    try:
        env.reset(seed=0)
        planner = MotionPlanner(env)
        rng = np.random.default_rng(0)
        for _ in range(5):
            start = pose_in_base(env)
            dq = euler2quat(*rng.uniform(-0.05, 0.05, 3))
            target = sapien.Pose(start.p + rng.uniform(-0.03, 0.03, 3), qmult(dq, start.q))
            action = planner.delta_action(target, GRIPPER_OPEN)
            assert np.all(np.abs(action) <= 1.0)
            errors = []
            for _ in range(8):  # the joint PD needs a few control steps to settle
                env.step(planner.delta_action(target, GRIPPER_OPEN))
                errors.append(np.linalg.norm(pose_in_base(env).p - target.p))
            end = pose_in_base(env)
            assert errors[0] < np.linalg.norm(start.p - target.p)  # the first step heads the right way
            assert errors[-1] < 0.003
            assert 1.0 - abs(np.dot(end.q, target.q)) < 1e-4
    finally:
        env.close()


@pytest.mark.parametrize("task", TASKS)
def test_task_resets_are_seeded_and_evaluate(catalogue, task):
    scene = catalogue.scene(catalogue.selected[task][0])
    env = make_env(scene, image_size=32, obs_mode="rgb")
    try:
        obs1, _ = env.reset(seed=11)
        p1 = env.unwrapped.obj.pose.p.clone()
        obs2, _ = env.reset(seed=11)
        assert np.allclose(p1, env.unwrapped.obj.pose.p)
        env.reset(seed=12)
        assert not np.allclose(p1, env.unwrapped.obj.pose.p)
        info = env.unwrapped.evaluate()
        assert not bool(info["success"])  # nothing is solved at reset
        _, reward, *_ = env.step(np.zeros(7, dtype=np.float32))
        assert 0.0 <= float(reward) <= 1.0
        rgb = obs2["sensor_data"]
        assert set(rgb) == {"third_view", "hand_camera"}
        assert env.unwrapped.instruction.startswith(("pick up", "push", "pull", "move"))
    finally:
        env.close()


def test_an_environment_opened_after_another_closed_renders_the_same_images(catalogue):
    """The renderer outlives the environments (``make_env`` keeps one for the process, so that a
    job opening one environment after another builds it once): the images do not change."""
    scene = catalogue.scene(catalogue.selected["pick_place"][0])
    images = []
    for _ in range(2):
        env = make_env(scene, image_size=32, obs_mode="rgb")
        try:
            obs, _ = env.reset(seed=3)
            images.append(obs["sensor_data"]["third_view"]["rgb"].numpy())
        finally:
            env.close()
    assert images[0].std() > 0 and np.array_equal(*images)


def test_generation_is_deterministic(catalogue):
    """Same config, same seed: the same actions and the same pixels, from fresh processes' state."""
    scene = catalogue.scene(catalogue.selected["pick_place"][0])
    cfg = GeneratorConfig(n_optimal=0, n_suboptimal=1, n_exploratory=0, image_size=32)
    episodes = []
    for _ in range(2):
        gen = TrajectoryGenerator(scene, cfg)
        try:
            episodes.append(gen.episode(scene, "suboptimal", 0, Counter()))
        finally:
            gen.close()
    a, b = episodes
    assert a.meta["episode_seed"] == b.meta["episode_seed"]
    assert np.array_equal(a.actions, b.actions)
    assert np.array_equal(a.rgb["third_view"], b.rgb["third_view"])
    assert np.array_equal(a.rgb["wrist"], b.rgb["wrist"])


def test_a_plan_from_the_sampling_fallback_is_counted_in_the_trajectory(catalogue):
    """RRTConnect's paths are not reproducible (``roboscape.sim.planner``): each trajectory says how
    many it took, and the screw motion's are not counted."""
    scene = catalogue.scene(catalogue.selected["push"][0])
    gen = TrajectoryGenerator(scene, GeneratorConfig(n_optimal=1, n_suboptimal=0, n_exploratory=0, image_size=32))
    try:
        screwed = gen.episode(scene, "optimal", 0, Counter())
        assert screwed.meta["sampled_plans"] == 0 == gen.planner.sampled_plans
        gen.planner.planner.plan_screw = lambda *args, **kwargs: {"status": "screw failed"}
        sampled = gen.episode(scene, "optimal", 0, Counter())
        assert sampled is not None and sampled.meta["sampled_plans"] > 0
        assert gen.planner.sampled_plans >= sampled.meta["sampled_plans"]  # failed attempts' plans too
    finally:
        gen.close()
