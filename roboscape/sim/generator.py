"""Trajectory generation for one (task, shard): MPLib plans, executed and recorded per step.

Three kinds of trajectory (the episode's ``label``): ``optimal`` (the essential waypoints),
``suboptimal`` (paper section 4.1: :mod:`roboscape.sim.waypoints`) and ``exploratory`` (a prefix
of the optimal plan, then actions that cover the policy's action space:
:mod:`roboscape.sim.exploration`).

Speed comes from four choices, measured in ``bench/trajectory_throughput.py``:

1. one environment and one MPLib planner per job, reused across scenes (reconfigure) and
   trajectories (seeded reset);
2. only the stored cameras are rendered, once per control step, and no observation is built
   (``obs_mode="none"``): what is stored is read from the simulator directly;
3. each frame renders on the Vulkan queue while the next control step simulates (a frame is
   submitted after its step and collected after the next one);
4. the Panda's visual meshes are decimated (:mod:`roboscape.sim.robot`).
"""

from __future__ import annotations

import time
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from roboscape.sim.catalogue import Catalogue, SceneSpec, instruction
from roboscape.sim.env import CONTROL_MODE, make_env
from roboscape.sim.exploration import (
    DEFAULT_SEGMENTS,
    JITTER,
    SEGMENT_LENGTH,
    check_kinds,
    check_segment_length,
    exploratory_segments,
    explore,
    prefix_length,
)
from roboscape.sim.planner import GRIPPER_OPEN, MotionPlanner, PlanningError, pose_in_base
from roboscape.sim.tasks import CAMERA_NAMES
from roboscape.sim.trajectory_io import VIEWS, Episode
from roboscape.sim.waypoints import (
    SUBOPTIMAL_METHODS,
    Gripper,
    Move,
    Step,
    essential_steps,
    suboptimal_steps,
)


@dataclass
class GeneratorConfig:
    """Everything that changes what a trajectory job writes."""

    n_optimal: int = 4
    n_suboptimal: int = 4
    n_exploratory: int = 2
    explore_actions: int = 16  # exploratory actions after the planner's prefix
    explore_hold: int = 4  # control steps each exploratory action is held: the policy's rate
    explore_bound: float = 1.0  # translation bound, normalised controller units per control step
    explore_rotation_bound: float = 0.25  # rotation bound, same units
    explore_segment_length: tuple[int, int] = SEGMENT_LENGTH  # exploratory actions per segment (min, max)
    explore_from_rest: float = 0.5  # probability an exploratory trajectory skips the plan's prefix
    explore_rest_extreme: bool = True  # one exploring from the initial pose opens with an extreme segment
    explore_stall_mm: float = 5.0  # an extreme segment ends at an action moving the TCP less than this; 0: off
    explore_rest_hold: bool = False  # the opening extreme segment from rest holds its axis until the arm stalls
    explore_segments: tuple[str, ...] = DEFAULT_SEGMENTS  # the kinds of exploratory segment, drawn uniformly
    explore_jitter: float = JITTER  # std of a jitter segment's arm actions, a fraction of the bounds
    image_size: int = 128
    control_freq: int = 25
    sim_freq: int = 100
    max_attempts: int = 5
    max_steps: int = 400
    settle_steps: int = 8
    settle_tolerance: float = 0.004
    joint_speed_fraction: float = 0.5
    robot_visual_detail: float | None = 0.05
    shader: str = "minimal"
    suboptimal_methods: tuple[str, ...] = SUBOPTIMAL_METHODS
    seed: int = 0

    @property
    def env_max_episode_steps(self) -> int:
        """ManiSkill's truncation limit: above ``max_steps``, so that our own limit decides."""
        return self.max_steps + 100

    def count(self, label: str) -> int:
        """Trajectories of kind ``label`` per scene."""
        return getattr(self, f"n_{label}")

    def __post_init__(self):
        if self.explore_hold < 1 or not 0 < self.explore_bound <= 1 or not 0 <= self.explore_rotation_bound <= 1:
            raise ValueError("explore_hold must be >= 1 and the exploration bounds within the controller's (0, 1]")
        self.explore_segment_length = check_segment_length(self.explore_segment_length)
        self.explore_segments = check_kinds(self.explore_segments)
        if not 0 < self.explore_jitter <= 1:
            raise ValueError(f"explore_jitter is a fraction of the bounds, in (0, 1], got {self.explore_jitter}")
        if not 0 <= self.explore_from_rest <= 1:
            raise ValueError(f"explore_from_rest is a probability, got {self.explore_from_rest}")
        if self.explore_stall_mm < 0:
            raise ValueError(f"explore_stall_mm must be >= 0 (0: off), got {self.explore_stall_mm}")
        self.suboptimal_methods = tuple(self.suboptimal_methods)
        unknown = set(self.suboptimal_methods) - set(SUBOPTIMAL_METHODS)
        if unknown:
            raise ValueError(f"unknown suboptimal methods {sorted(unknown)}; known: {SUBOPTIMAL_METHODS}")


def episode_seed(cfg_seed: int, scene_id: str, label: str, index: int, attempt: int) -> int:
    """A stable 31-bit seed for one attempt (independent of shard layout and process)."""
    return zlib.crc32(f"{cfg_seed}|{scene_id}|{label}|{index}|{attempt}".encode()) & 0x7FFFFFFF


class EpisodeFailed(RuntimeError):
    def __init__(self, cause: str, message: str = ""):
        super().__init__(f"{cause}: {message}" if message else cause)
        self.cause = cause


@dataclass
class _Rollout:
    """What one attempt records, step by step."""

    states: list[dict] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    success: list[bool] = field(default_factory=list)
    qpos: list[np.ndarray] = field(default_factory=list)
    qvel: list[np.ndarray] = field(default_factory=list)
    tcp: list[np.ndarray] = field(default_factory=list)
    tcp_base: list[np.ndarray] = field(default_factory=list)
    obj: list[np.ndarray] = field(default_factory=list)
    rgb: dict[str, list[np.ndarray]] = field(default_factory=lambda: {v: [] for v in VIEWS})


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy()[0] if isinstance(x, torch.Tensor) else np.asarray(x)


class TrajectoryGenerator:
    """Owns one environment and planner and turns scenes into recorded episodes."""

    def __init__(self, first_scene: SceneSpec, cfg: GeneratorConfig, task_params=None):
        self.cfg = cfg
        self.env = make_env(
            first_scene,
            image_size=cfg.image_size,
            obs_mode="none",
            task_params=task_params,
            control_freq=cfg.control_freq,
            sim_freq=cfg.sim_freq,
            max_episode_steps=cfg.env_max_episode_steps,
            robot_visual_detail=cfg.robot_visual_detail,
            shader=cfg.shader,
        )
        self.base = self.env.unwrapped
        self.scene: SceneSpec = first_scene
        self.planner = MotionPlanner(self.env, cfg.joint_speed_fraction)
        self.timings: Counter = Counter()
        self._frame_pending = False

    def close(self) -> None:
        self.env.close()

    # ------------------------------------------------------------------ recording
    def _collect_frame(self, roll: _Rollout) -> None:
        """Wait for the submitted frame of every camera and store it."""
        if not self._frame_pending:
            return
        t0 = time.perf_counter()
        for name, cam in self.base.scene.sensors.items():
            rgb = cam.get_obs(rgb=True, depth=False, segmentation=False, position=False)["rgb"]
            roll.rgb[CAMERA_NAMES[name]].append(_np(rgb)[..., :3])
        self._frame_pending = False
        self.timings["render_wait_s"] += time.perf_counter() - t0

    def _submit_frame(self) -> None:
        """Push the current poses to the renderer and start every camera (asynchronous)."""
        self.base.scene.update_render(update_sensors=True, update_human_render_cameras=False)
        for cam in self.base.scene.sensors.values():
            cam.capture()
        self._frame_pending = True

    def _record(self, roll: _Rollout) -> None:
        self._collect_frame(roll)
        self._submit_frame()
        agent = self.base.agent
        roll.states.append({k: {n: _np(v) for n, v in d.items()} for k, d in self.base.get_state_dict().items()})
        roll.qpos.append(_np(agent.robot.get_qpos()))
        roll.qvel.append(_np(agent.robot.get_qvel()))
        roll.tcp.append(_np(agent.tcp.pose.raw_pose))
        tb = pose_in_base(self.env)
        roll.tcp_base.append(np.concatenate([tb.p, tb.q]))
        roll.obj.append(_np(self.base.obj.pose.raw_pose))

    def _step(self, roll: _Rollout, action: np.ndarray) -> None:
        if len(roll.actions) >= self.cfg.max_steps:
            raise EpisodeFailed("too_long", f"exceeded {self.cfg.max_steps} steps")
        if not np.all(np.isfinite(action)):
            raise EpisodeFailed("nonfinite_action")
        _, reward, _, _, info = self.env.step(action)
        roll.actions.append(action)
        roll.rewards.append(float(_np(reward)))
        roll.success.append(bool(_np(info["success"])))
        self._record(roll)

    def _execute(self, steps: list[Step], roll: _Rollout) -> float:
        """Track ``steps`` with the planner; returns the gripper command it ends with."""
        planner = self.planner
        gripper = GRIPPER_OPEN
        hold = pose_in_base(self.env)
        for st in steps:
            if isinstance(st, Gripper):
                gripper = st.state
                for _ in range(st.steps):
                    self._step(roll, planner.delta_action(hold, gripper))
                continue
            assert isinstance(st, Move)
            path = planner.plan(st.pose)
            for q in path[1:]:
                self._step(roll, planner.delta_action(planner.tcp_in_base(q), gripper))
            target = planner.to_base(st.pose)
            # Settle only where precision matters (grasp, place, contact); free-space moves flow on.
            for _ in range(self.cfg.settle_steps if not st.free else 0):
                if np.linalg.norm(pose_in_base(self.env).p - target.p) < self.cfg.settle_tolerance:
                    break
                self._step(roll, planner.delta_action(target, gripper))
            hold = target
        return gripper

    def _explore(self, roll: _Rollout, gripper: float, rng: np.random.Generator, at_rest: bool) -> None:
        cfg = self.cfg
        stall = cfg.explore_stall_mm / 1000
        # Segments cut short are replaced by later ones: enough of them that every one can be.
        longest = cfg.explore_segment_length[1]
        segments = exploratory_segments(
            cfg.explore_actions * (longest if stall > 0 else 1),
            cfg.explore_bound,
            cfg.explore_rotation_bound,
            gripper,
            rng,
            cfg.explore_segment_length,
            open_extreme=cfg.explore_rest_extreme and at_rest,
            open_length=cfg.explore_actions if cfg.explore_rest_hold else None,
            kinds=cfg.explore_segments,
            jitter=cfg.explore_jitter,
        )

        def act(action: np.ndarray) -> np.ndarray:
            before = roll.tcp_base[-1][:3]
            for _ in range(cfg.explore_hold):
                self._step(roll, action)
            return roll.tcp_base[-1][:3] - before

        explore(segments, cfg.explore_actions, act, stall)

    # ------------------------------------------------------------------ episodes
    def set_scene(self, scene: SceneSpec, seed: int) -> None:
        if scene != self.scene:
            self.env.reset(seed=seed, options={"reconfigure": True, "scene": scene})
            self.scene = scene
            self.planner.sync_base()

    def attempt(self, scene: SceneSpec, seed: int, label: str, method: str | None) -> tuple[_Rollout, bool, int]:
        """One planned and executed episode (no frames yet), whether it started solved, and the
        control step its exploration starts at (exploratory episodes; otherwise its length)."""
        self.set_scene(scene, seed)
        self.env.reset(seed=seed)
        initial_success = bool(_np(self.base.evaluate()["success"]))
        roll = _Rollout()
        self._frame_pending = False
        self._record(roll)
        steps = essential_steps(self.env, self.base.agent.tcp.pose.sp)
        if label == "suboptimal":
            steps = suboptimal_steps(steps, method, np.random.RandomState(seed))
        if label == "exploratory":
            rng = np.random.default_rng(seed)
            steps = steps[: prefix_length(len(steps), rng, self.cfg.explore_from_rest, seed)]
        try:
            gripper = self._execute(steps, roll)
            explore_from = len(roll.actions)
            if label == "exploratory":
                self._explore(roll, gripper, rng, at_rest=explore_from == 0)
        finally:
            self._collect_frame(roll)
        return roll, initial_success, explore_from

    def episode(self, scene: SceneSpec, label: str, index: int, failures: Counter) -> Episode | None:
        """Plan, execute, retry on failure (counted by cause), render: a kept episode or None."""
        cfg = self.cfg
        if scene.task != self.base.TASK:
            raise ValueError(f"a {self.base.TASK!r} generator cannot generate {scene.scene_id!r}")
        method = None
        if label == "suboptimal":
            method = cfg.suboptimal_methods[index % len(cfg.suboptimal_methods)]
        for attempt in range(cfg.max_attempts):
            seed = episode_seed(cfg.seed, scene.scene_id, label, index, attempt)
            sampled = self.planner.sampled_plans
            t0 = time.perf_counter()
            try:
                roll, initial_success, explore_from = self.attempt(scene, seed, label, method)
            except (PlanningError, EpisodeFailed) as err:
                failures[err.cause] += 1
                continue
            except Exception as err:  # noqa: BLE001 - a planner/sim crash must not kill the job
                failures[f"exception:{type(err).__name__}"] += 1
                continue
            finally:
                self.timings["attempt_s"] += time.perf_counter() - t0
            if label == "optimal" and not roll.success[-1]:
                failures["task_not_solved"] += 1
                continue
            rgb = {v: np.stack(frames).astype(np.uint8) for v, frames in roll.rgb.items()}
            env_states = {
                kind: {name: np.stack([s[kind][name] for s in roll.states]) for name in roll.states[0][kind]}
                for kind in roll.states[0]
            }
            meta = dict(
                episode_seed=seed,
                control_mode=CONTROL_MODE,
                elapsed_steps=len(roll.actions),
                success=bool(roll.success[-1]),
                ever_success=bool(any(roll.success)),
                initial_success=initial_success,
                # reconfigure: ManiSkill's replay tool resets with these kwargs, and each episode may be a new scene
                reset_kwargs=dict(seed=seed, options=dict(scene=asdict(scene), reconfigure=True)),
                scene_id=scene.scene_id,
                task=scene.task,
                split=scene.split,
                instruction=instruction(scene, self.base.task_params),
                label=label,
                suboptimal_method=method,
                explore_from=explore_from if label == "exploratory" else None,
                attempts=attempt + 1,
                sampled_plans=self.planner.sampled_plans - sampled,  # RRTConnect's: may differ in another run
            )
            return Episode(
                actions=np.stack(roll.actions),
                rewards=np.asarray(roll.rewards, dtype=np.float32),
                success=np.asarray(roll.success),
                rgb=rgb,
                qpos=np.stack(roll.qpos),
                qvel=np.stack(roll.qvel),
                tcp_pose=np.stack(roll.tcp),
                tcp_pose_base=np.stack(roll.tcp_base),
                obj_pose=np.stack(roll.obj),
                env_states=env_states,
                meta=meta,
            )
        failures["gave_up"] += 1
        return None


def shard_scene_ids(catalogue: Catalogue, task: str, shard: int, scenes_per_shard: int) -> list[str]:
    scene_ids = catalogue.selected[task]
    chunk = scene_ids[shard * scenes_per_shard : (shard + 1) * scenes_per_shard]
    if not chunk:
        raise ValueError(f"task {task!r} has {len(scene_ids)} selected scenes: there is no shard {shard}")
    return chunk
