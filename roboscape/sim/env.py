"""Creating roboscape environments with the CPU simulation and CPU (llvmpipe) rendering."""

from __future__ import annotations

import dataclasses
import os

import gymnasium as gym

import roboscape.sim.tasks  # noqa: F401  (registers the env ids)
from roboscape.sim.catalogue import TASK_ENV_IDS, SceneSpec, TaskParams
from roboscape.sim.robot import robot_uid

CONTROL_MODE = "pd_ee_delta_pose"
"""The recorded action space: 7-DoF end-effector delta pose in the robot base frame
(xyz translation, XYZ-Euler rotation about the TCP with base-aligned axes; both normalised
to [-1, 1] = +-0.1 m / +-0.1 rad per step) plus the gripper (1 open, -1 closed)."""


def configure_process(threads: int = 1) -> None:
    """Environment variables for headless, offline, one-env-per-process simulation.

    Must run before SAPIEN creates its renderer (i.e. before the first env)."""
    os.environ.setdefault("MS_SKIP_ASSET_DOWNLOAD_PROMPT", "1")
    os.environ.setdefault("LP_NUM_THREADS", str(threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("MESA_SHADER_CACHE_DIR", os.path.expanduser("~/.cache/roboscape-mesa"))
    import torch

    torch.set_num_threads(threads)


def env_kwargs(
    image_size: int = 128,
    obs_mode: str = "rgb",
    task_params: TaskParams | None = None,
    control_freq: int = 25,
    sim_freq: int = 100,
    robot_visual_detail: float | None = 0.05,
    shader: str = "minimal",
) -> dict:
    """``gym.make``'s keyword arguments for a roboscape environment, all but its scene and episode
    limit: JSON-able, so that a trajectory file's sidecar records them (``env_info.env_kwargs``) and
    ManiSkill's tools recreate the recorded environment from it. ``robot_visual_detail`` is the
    fraction of the Panda's visual triangles kept (:mod:`roboscape.sim.robot`; ``None``:
    ManiSkill's full meshes); ``shader`` the SAPIEN shader pack of the cameras: ``minimal``
    (rasterised, lit; the default) or ManiSkill's ``default``, which costs ~20% more per frame on
    llvmpipe for a near-identical image."""
    return dict(
        obs_mode=obs_mode,
        control_mode=CONTROL_MODE,
        reward_mode="normalized_dense",
        sim_backend="cpu",
        render_backend="cpu",
        robot_uids=robot_uid(robot_visual_detail),
        image_size=image_size,
        control_freq=control_freq,
        sim_freq=sim_freq,
        task_params=dataclasses.asdict(task_params or TaskParams()),
        sensor_configs=dict(width=image_size, height=image_size, shader_pack=shader),
    )


def make_env(
    scene: SceneSpec,
    image_size: int = 128,
    obs_mode: str = "rgb",
    task_params: TaskParams | None = None,
    control_freq: int = 25,
    sim_freq: int = 100,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    robot_visual_detail: float | None = 0.05,
    shader: str = "minimal",
):
    """A single CPU-simulated, CPU-rendered environment of ``scene``'s task (see :func:`env_kwargs`)."""
    configure_process()
    kwargs = env_kwargs(image_size, obs_mode, task_params, control_freq, sim_freq, robot_visual_detail, shader)
    kwargs.update(scene=scene, render_mode=render_mode)
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    return gym.make(TASK_ENV_IDS[scene.task], **kwargs)
