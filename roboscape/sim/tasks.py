"""The four RoboScape task families as registered ManiSkill3 environments.

==========================  ==========================================================
env id                      success (``evaluate()``)
==========================  ==========================================================
RoboScape-PickPlace-v1      object rests in/on the container and is released
RoboScape-Push-v1           object moved forward (+x, away from the robot) by >= d - tol
RoboScape-Pull-v1           object moved back (-x, toward the robot) by >= d - tol
RoboScape-MoveToAim-v1      object rests on the target carpet and is released
==========================  ==========================================================

Each scene has a Panda arm with a wrist camera (``panda_wristcam``), a fixed third-view
camera, the catalogue's object, container and table, and seeded random initial poses. The
scene is chosen with the ``scene`` keyword (a :class:`~roboscape.sim.catalogue.SceneSpec`
or its dict) and can be swapped without a new process by
``env.reset(seed=..., options={"reconfigure": True, "scene": spec})``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sapien
import torch
from mani_skill.envs.sapien_env import BaseEnv
from mani_skill.sensors.camera import CameraConfig
from mani_skill.utils import sapien_utils
from mani_skill.utils.registration import register_env
from mani_skill.utils.structs.pose import Pose
from mani_skill.utils.structs.types import SimConfig

from roboscape.sim import assets
from roboscape.sim.brdf_lut import skip_default_brdf_lut
from roboscape.sim.catalogue import (
    CONTAINERS_BY_NAME,
    OBJECTS_BY_NAME,
    TABLES_BY_NAME,
    TASK_ENV_IDS,
    SceneSpec,
    TaskParams,
    instruction,
)
from roboscape.sim.robot import ensure_registered

ROBOT_BASE_X = -0.615
PANDA_REST_QPOS = np.array([0.0, np.pi / 8, 0.0, -5 * np.pi / 8, 0.0, 3 * np.pi / 4, np.pi / 4, 0.04, 0.04])
THIRD_VIEW_EYE = (0.38, 0.42, 0.52)
THIRD_VIEW_TARGET = (-0.16, 0.0, 0.02)
CAMERA_NAMES = {"third_view": "third_view", "hand_camera": "wrist"}
"""ManiSkill sensor uid -> the view name used in roboscape's files."""


def _as_scene(scene: SceneSpec | dict | None, task: str) -> SceneSpec:
    if scene is None:
        return SceneSpec(f"{task}/default", task, "lemon", "plate", "wood", "ind")
    if isinstance(scene, dict):
        scene = SceneSpec.from_dict(scene)
    if scene.task != task:
        raise ValueError(f"scene {scene.scene_id!r} is a {scene.task!r} scene, not {task!r}")
    return scene


class RoboScapeEnv(BaseEnv):
    """Shared scene, cameras, randomisation and reward plumbing of the four tasks."""

    TASK: str = ""
    SUPPORTED_REWARD_MODES = ["normalized_dense", "dense", "sparse", "none"]

    def __init__(
        self,
        *args,
        scene: SceneSpec | dict | None = None,
        image_size: int = 128,
        task_params: TaskParams | dict | None = None,
        robot_uids: str = "panda_wristcam",
        sim_freq: int = 100,
        control_freq: int = 25,
        **kwargs,
    ):
        self.scene_spec = _as_scene(scene, self.TASK)
        self.image_size = int(image_size)
        if isinstance(task_params, dict):
            task_params = TaskParams(**task_params)
        self.task_params = task_params or TaskParams()
        self._sim_freq, self._control_freq = sim_freq, control_freq
        self.init_obj_pos = None
        self.goal_xy = None
        super().__init__(*args, robot_uids=ensure_registered(robot_uids), **kwargs)

    # ------------------------------------------------------------------ configuration
    @property
    def _default_sim_config(self):
        return SimConfig(sim_freq=self._sim_freq, control_freq=self._control_freq)

    @property
    def _default_sensor_configs(self):
        pose = sapien_utils.look_at(eye=THIRD_VIEW_EYE, target=THIRD_VIEW_TARGET)
        return [CameraConfig("third_view", pose, self.image_size, self.image_size, 1.0, 0.01, 10)]

    @property
    def _default_human_render_camera_configs(self):
        pose = sapien_utils.look_at(eye=THIRD_VIEW_EYE, target=THIRD_VIEW_TARGET)
        return CameraConfig("render_camera", pose, 512, 512, 1.0, 0.01, 10)

    @property
    def instruction(self) -> str:
        return instruction(self.scene_spec, self.task_params)

    def _setup_sensors(self, options: dict):
        super()._setup_sensors(options)
        skip_default_brdf_lut(self.scene.sub_scenes)  # the same frames, without SAPIEN's table's compute

    # ------------------------------------------------------------------ scene
    def _load_agent(self, options: dict):
        super()._load_agent(options, sapien.Pose(p=[ROBOT_BASE_X, 0, 0]))

    def _load_scene(self, options: dict):
        if options.get("scene") is not None:
            self.scene_spec = _as_scene(options["scene"], self.TASK)
        spec = self.scene_spec
        self.object_spec = OBJECTS_BY_NAME[spec.object]
        self.container_spec = CONTAINERS_BY_NAME[spec.container]
        self.table = assets.build_table(self.scene, TABLES_BY_NAME[spec.table])
        self.obj = assets.build_object(self.scene, self.object_spec, name="object")
        self.container = assets.build_container(self.scene, self.container_spec)
        self.carpet = None
        if self.TASK == "move_to_aim":
            self.carpet = assets.build_carpet(self.scene, self.task_params.carpet_radius, self.task_params.carpet_color)

    def _initialize_episode(self, env_idx: torch.Tensor, options: dict):
        if self.num_envs != 1:
            raise NotImplementedError("roboscape tasks run one environment per process (CPU sim)")
        rng = self._batched_episode_rng[0]
        qpos = PANDA_REST_QPOS + np.r_[rng.normal(0, 0.02, 7), 0, 0]
        self.agent.reset(torch.as_tensor(qpos[None], dtype=torch.float32))
        self.agent.robot.set_pose(sapien.Pose(p=[ROBOT_BASE_X, 0, 0]))
        layout = self._sample_layout(rng)
        half_h = self.object_spec.half_height
        obj_q = _yaw_quat(layout["object_yaw"])
        self.obj.set_pose(
            Pose.create_from_pq(torch.tensor([[*layout["object_xy"], half_h + 1e-3]]), torch.tensor([obj_q]))
        )
        self.obj.set_linear_velocity(torch.zeros((1, 3)))
        self.obj.set_angular_velocity(torch.zeros((1, 3)))
        self.container.set_pose(Pose.create_from_pq(torch.tensor([[*layout["container_xy"], 0.0]])))
        if self.carpet is not None:
            self.carpet.set_pose(Pose.create_from_pq(torch.tensor([[*layout["goal_xy"], 0.0]])))
        self.init_obj_pos = torch.tensor([[*layout["object_xy"], half_h]], dtype=torch.float32)
        self.goal_xy = torch.as_tensor(np.asarray(layout["goal_xy"], dtype=np.float32)[None])

    def _sample_layout(self, rng: np.random.RandomState) -> dict[str, Any]:
        raise NotImplementedError

    def _sample_away(self, rng, lo, hi, others: list[tuple[np.ndarray, float]], radius: float, tries: int = 200):
        """Rejection-sample an xy in the box [lo, hi] at least ``radius + r`` from each other (xy, r)."""
        for _ in range(tries):
            xy = rng.uniform(lo, hi)
            if all(np.linalg.norm(xy - o) >= radius + r for o, r in others):
                return xy
        raise RuntimeError(f"could not place an item in {self.scene_spec.scene_id} after {tries} tries")

    # ------------------------------------------------------------------ observations
    def _get_obs_extra(self, info: dict):
        return dict(
            tcp_pose=self.agent.tcp.pose.raw_pose,
            obj_pose=self.obj.pose.raw_pose,
            goal_xy=self.goal_xy,
            is_grasped=info["is_grasped"],
        )

    # ------------------------------------------------------------------ evaluation
    def _object_on_table(self) -> torch.Tensor:
        return self.obj.pose.p[:, 2] <= self.object_spec.half_height + 0.02

    def evaluate(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def compute_dense_reward(self, obs: Any, action: torch.Tensor, info: dict):
        return self.compute_normalized_dense_reward(obs, action, info) * self.MAX_DENSE_REWARD

    MAX_DENSE_REWARD = 1.0

    def compute_normalized_dense_reward(self, obs: Any, action: torch.Tensor, info: dict):
        reward = self._staged_reward(info)
        return torch.where(info["success"], torch.ones_like(reward), reward)

    def _staged_reward(self, info: dict) -> torch.Tensor:
        raise NotImplementedError


def _yaw_quat(yaw: float) -> list[float]:
    return [float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2))]


WORKSPACE_LO = np.array([-0.14, -0.20])
WORKSPACE_HI = np.array([0.10, 0.20])


class _PlaceEnv(RoboScapeEnv):
    """Pick-and-place style tasks: the object must come to rest at ``goal_xy`` and be released."""

    def _goal_radius(self) -> float:
        raise NotImplementedError

    def _goal_top(self) -> float:
        """Height of the surface the object rests on at the goal."""
        raise NotImplementedError

    def evaluate(self):
        obj_p = self.obj.pose.p
        xy_dist = torch.linalg.norm(obj_p[:, :2] - self.goal_xy, dim=1)
        at_goal = xy_dist <= self._goal_radius()
        resting = obj_p[:, 2] <= self._goal_top() + self.object_spec.half_height + 0.02
        is_grasped = self.agent.is_grasping(self.obj)
        return {
            "success": at_goal & resting & ~is_grasped,
            "at_goal": at_goal,
            "is_grasped": is_grasped,
            "goal_distance": xy_dist,
        }

    def _staged_reward(self, info):
        tcp_to_obj = torch.linalg.norm(self.obj.pose.p - self.agent.tcp.pose.p, dim=1)
        reach = 1 - torch.tanh(5 * tcp_to_obj)
        grasped = info["is_grasped"].float()
        goal = torch.cat([self.goal_xy, torch.full((1, 1), self._goal_top() + self.object_spec.half_height + 0.05)], 1)
        place = 1 - torch.tanh(5 * torch.linalg.norm(self.obj.pose.p - goal, dim=1))
        released = (~info["is_grasped"] & info["at_goal"]).float()
        return (reach + grasped + place * torch.maximum(grasped, released) + released) / 4


@register_env(TASK_ENV_IDS["pick_place"], max_episode_steps=400)
class PickPlaceEnv(_PlaceEnv):
    """Pick up the object and place it on the plate / in the bowl."""

    TASK = "pick_place"

    def _sample_layout(self, rng):
        c = self.container_spec
        cont = self._sample_away(rng, WORKSPACE_LO + c.radius * 0.5, WORKSPACE_HI - c.radius * 0.5, [], 0)
        obj = self._sample_away(
            rng, WORKSPACE_LO, WORKSPACE_HI, [(cont, c.radius + 0.02)], self.object_spec.footprint_radius + 0.03
        )
        return dict(object_xy=obj, object_yaw=rng.uniform(-np.pi, np.pi), container_xy=cont, goal_xy=cont)

    def _goal_radius(self):
        return self.container_spec.radius

    def _goal_top(self):
        return 0.012 if self.container_spec.kind == "plate" else 0.006


@register_env(TASK_ENV_IDS["move_to_aim"], max_episode_steps=400)
class MoveToAimEnv(_PlaceEnv):
    """Move the object onto the target carpet."""

    TASK = "move_to_aim"

    def _sample_layout(self, rng):
        c, r = self.container_spec, self.task_params.carpet_radius
        goal = self._sample_away(rng, WORKSPACE_LO + r, WORKSPACE_HI - r, [], 0)
        obj = self._sample_away(rng, WORKSPACE_LO, WORKSPACE_HI, [(goal, r)], self.object_spec.footprint_radius + 0.06)
        cont = self._sample_away(
            rng,
            WORKSPACE_LO - 0.06,
            WORKSPACE_HI + 0.06,
            [(goal, r), (obj, self.object_spec.footprint_radius)],
            c.radius + 0.05,
        )
        return dict(object_xy=obj, object_yaw=rng.uniform(-np.pi, np.pi), container_xy=cont, goal_xy=goal)

    def _goal_radius(self):
        return self.task_params.carpet_radius

    def _goal_top(self):
        return 0.0


class _SlideEnv(RoboScapeEnv):
    """Push / pull: displace the object along x by a distance, keeping it on the table."""

    DIRECTION = 1.0  # +1: forward (push), -1: back (pull)
    OBJECT_X = (-0.14, -0.04)

    def _distance(self) -> float:
        raise NotImplementedError

    def _sample_layout(self, rng):
        y = rng.uniform(-0.12, 0.12)
        obj = np.array([rng.uniform(*self.OBJECT_X), y])
        side = -np.sign(y) if abs(y) > 1e-6 else 1.0
        cont = np.array([rng.uniform(-0.10, 0.06), side * rng.uniform(0.22, 0.27)])
        goal = obj + np.array([self.DIRECTION * self._distance(), 0.0])
        return dict(object_xy=obj, object_yaw=rng.uniform(-np.pi, np.pi), container_xy=cont, goal_xy=goal)

    def evaluate(self):
        disp = self.obj.pose.p[:, :2] - self.init_obj_pos[:, :2]
        along = disp[:, 0] * self.DIRECTION
        moved = along >= self._distance() - self.task_params.distance_tolerance
        on_line = disp[:, 1].abs() <= 0.05
        return {
            "success": moved & on_line & self._object_on_table(),
            "displacement": along,
            "is_grasped": self.agent.is_grasping(self.obj),
        }

    def _staged_reward(self, info):
        # Reach the side of the object opposite to the motion, then make progress along x.
        contact = self.obj.pose.p.clone()
        contact[:, 0] -= self.DIRECTION * (self.object_spec.footprint_radius + 0.02)
        reach = 1 - torch.tanh(5 * torch.linalg.norm(contact - self.agent.tcp.pose.p, dim=1))
        progress = torch.clamp(info["displacement"] / self._distance(), 0.0, 1.0)
        return (reach + 2 * progress) / 3


@register_env(TASK_ENV_IDS["push"], max_episode_steps=300)
class PushEnv(_SlideEnv):
    """Push the object forward (away from the robot) by ``push_distance``."""

    TASK = "push"
    DIRECTION = 1.0
    OBJECT_X = (-0.14, -0.04)

    def _distance(self):
        return self.task_params.push_distance


@register_env(TASK_ENV_IDS["pull"], max_episode_steps=300)
class PullEnv(_SlideEnv):
    """Pull the object back (toward the robot) by ``pull_distance``."""

    TASK = "pull"
    DIRECTION = -1.0
    OBJECT_X = (0.0, 0.10)

    def _distance(self):
        return self.task_params.pull_distance
