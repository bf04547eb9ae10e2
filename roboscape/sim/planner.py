"""MPLib planning and end-effector-delta execution.

MPLib plans joint-space paths to TCP poses (a straight screw motion first, RRTConnect as a
fallback), time-parameterised at the control rate. The screw motion is a function of the start
configuration and the pose; RRTConnect samples from OMPL's random generator, which MPLib does not
let us seed, for a wall-clock budget, so a path it gives may differ between runs and with the
machine's load. The planner counts the paths it gave that way (``sampled_plans``); the data stage
records them per trajectory and per shard. The path is executed in the *recorded*
action space, ``pd_ee_delta_pose``: each control step commands the delta from the current TCP
pose to the planned TCP pose of the next path point (forward kinematics), clipped to the
controller's bounds. Because the commands that move the robot are exactly the recorded
actions, replaying them open loop in the same scene reproduces the motion (measured by
``roboscape.sim.replay``).
"""

from __future__ import annotations

from dataclasses import dataclass

import mplib
import numpy as np
import sapien
import torch
from mani_skill.utils.geometry.rotation_conversions import (
    matrix_to_euler_angles,
    quaternion_to_matrix,
)
from transforms3d.quaternions import qinverse, qmult

GRIPPER_OPEN = 1.0
GRIPPER_CLOSED = -1.0

# Franka Emika Panda rated joint limits (datasheet), joints 1-7. MPLib's defaults are 1 rad/s and
# 1 rad/s^2 for every joint, far below what the arm does; trajectories use a fraction of these.
PANDA_JOINT_VEL_LIMITS = np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61])
PANDA_JOINT_ACC_LIMITS = np.array([15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0])


class PlanningError(RuntimeError):
    """A motion could not be planned; ``cause`` is the summary's failure category."""

    def __init__(self, cause: str, message: str = ""):
        super().__init__(f"{cause}: {message}" if message else cause)
        self.cause = cause


@dataclass
class ActionScale:
    """The normalised -> physical mapping of ManiSkill's ``pd_ee_delta_pose`` arm controller."""

    pos_low: np.ndarray
    pos_high: np.ndarray
    rot_scale: float  # physical rotation = rot_scale * action (action norm clipped to 1)

    @classmethod
    def from_env(cls, env) -> ActionScale:
        cfg = env.unwrapped.agent.controller.controllers["arm"].config
        return cls(
            np.broadcast_to(np.float64(cfg.pos_lower), 3).copy(),
            np.broadcast_to(np.float64(cfg.pos_upper), 3).copy(),
            float(cfg.rot_lower),
        )

    def normalise(self, delta_pos: np.ndarray, delta_euler: np.ndarray) -> np.ndarray:
        """Physical deltas -> the 6 normalised arm action entries (clipped to what one step can do)."""
        mid, half = (self.pos_high + self.pos_low) / 2, (self.pos_high - self.pos_low) / 2
        pos = np.clip((delta_pos - mid) / half, -1.0, 1.0)
        rot = delta_euler / self.rot_scale
        norm = np.linalg.norm(rot)
        if norm > 1.0:
            rot = rot / norm
        return np.concatenate([pos, rot])


def pose_in_base(env) -> sapien.Pose:
    """The TCP pose in the robot base frame (single CPU env: read from SAPIEN directly, not
    through ManiSkill's batched torch poses, which are slow for one env)."""
    agent = env.unwrapped.agent
    return agent.robot.root._objs[0].entity_pose.inv() * agent.tcp._objs[0].entity_pose


class MotionPlanner:
    """One MPLib planner per environment (built once, reused across scenes and trajectories)."""

    MOVE_GROUP = "panda_hand_tcp"

    def __init__(self, env, joint_speed_fraction: float = 0.5):
        self.env = env
        base_env = env.unwrapped
        agent = base_env.agent
        robot = agent.robot
        self.planner = mplib.Planner(
            urdf=agent.urdf_path,
            srdf=agent.urdf_path.replace(".urdf", ".srdf"),
            user_link_names=[link.get_name() for link in robot.get_links()],
            user_joint_names=[joint.get_name() for joint in robot.get_active_joints()],
            move_group=self.MOVE_GROUP,
        )
        self.planner.joint_vel_limits = PANDA_JOINT_VEL_LIMITS * joint_speed_fraction
        self.planner.joint_acc_limits = PANDA_JOINT_ACC_LIMITS * joint_speed_fraction
        self.time_step = base_env.control_timestep
        self.scale = ActionScale.from_env(env)
        self._ee_index = self.planner.link_name_2_idx[self.MOVE_GROUP]
        self.sampled_plans = 0  # paths RRTConnect gave: not reproducible run to run (module docstring)
        self.sync_base()

    def sync_base(self) -> None:
        base = self.env.unwrapped.agent.robot.pose.sp
        self.planner.set_base_pose(np.hstack([base.p, base.q]))
        self._base = base

    def qpos(self) -> np.ndarray:
        return self.env.unwrapped.agent.robot.get_qpos()[0].cpu().numpy().astype(np.float64)

    def plan(self, target_world: sapien.Pose) -> np.ndarray:
        """A joint path (K, 7) at the control rate from the current configuration to ``target_world``."""
        goal = np.hstack([target_world.p, target_world.q])
        q = self.qpos()
        result = self.planner.plan_screw(goal, q, time_step=self.time_step)
        if result["status"] != "Success":
            result = self.planner.plan_qpos_to_pose(
                goal, q, time_step=self.time_step, planning_time=1.0, wrt_world=True
            )
            self.sampled_plans += result["status"] == "Success"
        if result["status"] != "Success":
            raise PlanningError("plan_failed", str(result["status"]))
        return np.asarray(result["position"])

    def tcp_in_base(self, arm_qpos: np.ndarray) -> sapien.Pose:
        """Forward kinematics: the TCP pose (base frame) for a 7-joint arm configuration."""
        full = np.concatenate([arm_qpos, [0.04, 0.04]])
        self.planner.pinocchio_model.compute_forward_kinematics(full)
        pose = self.planner.pinocchio_model.get_link_pose(self._ee_index)
        return sapien.Pose(pose[:3], pose[3:])

    def delta_action(self, target_base: sapien.Pose, gripper: float) -> np.ndarray:
        """The normalised 7-D action that moves the TCP from where it is toward ``target_base``."""
        current = pose_in_base(self.env)
        delta_pos = np.asarray(target_base.p, dtype=np.float64) - current.p
        # pd_ee_delta_pose applies the rotation as  q_target = q_delta * q_current.
        q_delta = qmult(target_base.q, qinverse(current.q))
        rot = quaternion_to_matrix(torch.as_tensor(q_delta, dtype=torch.float64))
        euler = matrix_to_euler_angles(rot, "XYZ").numpy()
        return np.concatenate([self.scale.normalise(delta_pos, euler), [gripper]]).astype(np.float32)

    def to_base(self, pose_world: sapien.Pose) -> sapien.Pose:
        return self._base.inv() * pose_world
