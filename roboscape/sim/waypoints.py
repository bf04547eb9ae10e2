"""Essential waypoints of each task and the three suboptimal variations of paper section 4.1.

An *optimal* trajectory visits only the essential waypoints. Suboptimal ones are derived from
them by one of:

- ``detour``: unrelated intermediate waypoints with position and rotation noise;
- ``interpolate``: new intermediate points along the path (stop-and-go, slightly off the line);
- ``perturb``: small position and rotation disturbances near the essential waypoints of the
  critical moments (grasping, placing, making contact).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import sapien
from transforms3d.euler import euler2quat
from transforms3d.quaternions import qmult

from roboscape.sim.planner import GRIPPER_CLOSED, GRIPPER_OPEN

SUBOPTIMAL_METHODS = ("detour", "interpolate", "perturb")
SAFE_HEIGHT = 0.16
GRIPPER_STEPS = 6


@dataclass(frozen=True)
class Move:
    """Move the TCP to ``pose`` (world frame)."""

    pose: sapien.Pose
    phase: str
    free: bool = True  # free space: detours may be inserted before this move
    critical: bool = False  # a grasp / place / contact pose: ``perturb`` disturbs it


@dataclass(frozen=True)
class Gripper:
    state: float
    phase: str
    steps: int = GRIPPER_STEPS


Step = Move | Gripper


def top_down(center, closing_xy) -> sapien.Pose:
    """A TCP pose pointing straight down whose fingers close along ``closing_xy``."""
    closing = np.array([closing_xy[0], closing_xy[1], 0.0])
    closing /= np.linalg.norm(closing)
    approaching = np.array([0.0, 0.0, -1.0])
    ortho = np.cross(closing, approaching)
    T = np.eye(4)
    T[:3, :3] = np.stack([ortho, closing, approaching], axis=1)
    T[:3, 3] = center
    return sapien.Pose(T)


def _yaw(q) -> float:
    w, x, y, z = q
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def grasp_closing(env, current_tcp: sapien.Pose) -> np.ndarray:
    """Close across the object's short horizontal axis; for round objects, keep the wrist's yaw.
    Of the two opposite directions, take the one nearer the current finger axis."""
    base = env.unwrapped
    spec = base.object_spec
    tcp_y = current_tcp.to_transformation_matrix()[:3, 1][:2]
    if spec.shape in ("sphere", "cylinder"):
        closing = tcp_y / np.linalg.norm(tcp_y)
    else:
        yaw = _yaw(base.obj.pose.sp.q)
        closing = np.array([-np.sin(yaw), np.cos(yaw)])
    return closing if closing @ tcp_y >= 0 else -closing


def _place_steps(env, current_tcp: sapien.Pose) -> list[Step]:
    base = env.unwrapped
    spec = base.object_spec
    obj = base.obj.pose.sp.p
    closing = grasp_closing(env, current_tcp)
    grasp_z = max(spec.half_height, 0.015)
    if spec.shape == "cylinder":  # tall: grasp the upper half
        grasp_z = max(spec.half_height * 1.3, 0.015)
    goal_xy = base.goal_xy[0].cpu().numpy()
    # The object hangs (half_height - grasp_z) above the TCP: release it ~2 cm above the goal.
    place_z = base._goal_top() + grasp_z + 0.02
    grasp = top_down([obj[0], obj[1], grasp_z], closing)
    return [
        Move(top_down([obj[0], obj[1], grasp_z + 0.10], closing), "pre_grasp", critical=True),
        Move(grasp, "grasp", free=False, critical=True),
        Gripper(GRIPPER_CLOSED, "close"),
        Move(top_down([obj[0], obj[1], SAFE_HEIGHT], closing), "lift", free=False),
        Move(top_down([goal_xy[0], goal_xy[1], SAFE_HEIGHT], closing), "above_goal"),
        Move(top_down([goal_xy[0], goal_xy[1], place_z], closing), "lower", free=False, critical=True),
        Gripper(GRIPPER_OPEN, "release"),
        Move(top_down([goal_xy[0], goal_xy[1], SAFE_HEIGHT], closing), "retreat", free=False),
    ]


def _slide_steps(env, direction: float, distance: float, current_tcp: sapien.Pose) -> list[Step]:
    base = env.unwrapped
    spec = base.object_spec
    obj = base.obj.pose.sp.p
    # Closed fingers push alike in any yaw: keep the wrist's yaw rather than turn it.
    closing = current_tcp.to_transformation_matrix()[:3, 1][:2]
    contact_gap = spec.footprint_radius + 0.035
    z = max(min(spec.half_height, 0.03), 0.015)
    start_x = obj[0] - direction * contact_gap
    # The fingertip touches at ~1 cm from the TCP; travel the distance plus a small margin.
    end_x = obj[0] - direction * (spec.footprint_radius + 0.01) + direction * (distance + 0.015)
    return [
        Gripper(GRIPPER_CLOSED, "close"),
        Move(top_down([start_x, obj[1], 0.10], closing), "pre_contact", critical=True),
        Move(top_down([start_x, obj[1], z], closing), "descend", free=False, critical=True),
        Move(top_down([end_x, obj[1], z], closing), "slide", free=False, critical=True),
        Move(top_down([end_x, obj[1], 0.12], closing), "retreat", free=False),
    ]


def essential_steps(env, current_tcp: sapien.Pose) -> list[Step]:
    """The optimal plan for the environment's current episode."""
    base = env.unwrapped
    task = base.TASK
    if task in ("pick_place", "move_to_aim"):
        return _place_steps(env, current_tcp)
    if task == "push":
        return _slide_steps(env, 1.0, base.task_params.push_distance, current_tcp)
    if task == "pull":
        return _slide_steps(env, -1.0, base.task_params.pull_distance, current_tcp)
    raise ValueError(f"unknown task {task!r}")


def _noisy(pose: sapien.Pose, rng: np.random.RandomState, pos_sigma: float, rot_sigma: float) -> sapien.Pose:
    dp = rng.normal(0.0, pos_sigma, 3)
    # Tilt less than yaw: the hand should still roughly point down.
    dq = euler2quat(*(rng.normal(0.0, 1.0, 3) * np.array([rot_sigma / 2, rot_sigma / 2, rot_sigma])))
    return sapien.Pose(pose.p + dp, qmult(dq, pose.q))


WORKSPACE_LO = np.array([-0.30, -0.30, 0.06])
WORKSPACE_HI = np.array([0.20, 0.30, 0.32])


def _clip_to_workspace(pose: sapien.Pose) -> sapien.Pose:
    return sapien.Pose(np.clip(pose.p, WORKSPACE_LO, WORKSPACE_HI), pose.q)


def suboptimal_steps(steps: list[Step], method: str, rng: np.random.RandomState) -> list[Step]:
    """Derive a suboptimal plan from the essential ``steps`` by ``method``."""
    moves = [i for i, s in enumerate(steps) if isinstance(s, Move)]
    if method == "detour":
        free = [i for i in moves if steps[i].free] or moves
        chosen = set(rng.choice(free, size=min(len(free), rng.randint(1, 3)), replace=False).tolist())
        out: list[Step] = []
        for i, s in enumerate(steps):
            if i in chosen:
                anchor = s.pose
                p = anchor.p + rng.uniform(-0.12, 0.12, 3) * np.array([1.0, 1.0, 0.5])
                p[2] = max(p[2], anchor.p[2]) + rng.uniform(0.02, 0.10)
                out.append(Move(_clip_to_workspace(_noisy(sapien.Pose(p, anchor.q), rng, 0.0, 0.35)), "detour"))
            out.append(s)
        return out
    if method == "interpolate":
        out = []
        prev = None
        for s in steps:
            if isinstance(s, Move) and prev is not None and s.free:
                k = rng.randint(2, 5)
                for j in range(1, k):
                    t = j / k
                    p = (1 - t) * prev.p + t * s.pose.p + rng.normal(0.0, 0.01, 3)
                    out.append(Move(sapien.Pose(p, s.pose.q), "interpolated"))
            out.append(s)
            if isinstance(s, Move):
                prev = s.pose
        return out
    if method == "perturb":
        out = []
        for s in steps:
            if isinstance(s, Move) and s.critical:
                # A disturbed approach pose first, then the (slightly disturbed) essential pose.
                out.append(Move(_noisy(s.pose, rng, 0.02, 0.2), "perturbed", free=s.free))
                out.append(replace(s, pose=_noisy(s.pose, rng, 0.006, 0.08)))
            else:
                out.append(s)
        return out
    raise ValueError(f"unknown suboptimal method {method!r}; known: {SUBOPTIMAL_METHODS}")
