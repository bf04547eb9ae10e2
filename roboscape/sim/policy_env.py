"""The RoboScape tasks at the policy's rate, as a gymnasium environment (what PPO and the closed-loop
evaluation step in ManiSkill).

**Rate.** One policy step is ``frame_skip`` control steps, as one step of the action world model
is (``world_model.arch.frame_skip``): the policy's end-effector delta is split evenly over them
and its gripper command held, so one policy runs in both environments. Its action space is
therefore ``frame_skip`` times the controller's for the six delta dimensions ([-k, k], normalised
units: k x 0.1 m or rad), [-1, 1] for the gripper (1 open, -1 closed). Actions outside are
clipped, and counted in ``info["action_clipped"]``.

**Observations** (the same keys, shapes and dtypes as the world-model environment's; no
proprioception, which the world model does not have)::

    rgb          (H, W, 3) uint8    the third-view camera now, as the data stage records it
    prev_rgb     (H, W, 3) uint8    the frame one policy step ago (the first frame after a reset)
    instruction  (D,)      float32  the scene's instruction, embedded (a sentence embedding)

**Episodes.** A reset draws a scene from ``scenes`` and a ManiSkill episode seed from the env's
generator, unless ``options`` give them (``{"scene": SceneSpec | dict | scene id, "episode_seed":
int}``). Scenes of several tasks may be mixed: one ManiSkill env per task is kept. An episode is
``terminated`` on success (when ``terminate_on_success``) and ``truncated`` after
``episode_steps`` policy steps. The reward is the mean over the control steps of the task's
rule-based normalised dense reward (1 at success).

**Bad actions.** A NaN or infinite action never reaches the simulator: the episode ends there
(``terminated``, reward 0) and ``info["failure"]`` says why, so that an evaluation counts it as a
failure with its cause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from roboscape.sim.catalogue import SceneSpec, TaskParams, instruction
from roboscape.sim.env import make_env
from roboscape.sim.policy_io import action_bounds, observation_space, split_action


def _scene(scene: SceneSpec | dict | str, scenes: Mapping[str, SceneSpec]) -> SceneSpec:
    if isinstance(scene, SceneSpec):
        return scene
    if isinstance(scene, dict):
        return SceneSpec.from_dict(scene)
    if scene not in scenes:
        raise KeyError(f"unknown scene {scene!r}; this environment has {sorted(scenes)}")
    return scenes[scene]


class PolicyEnv(gym.Env):
    """One environment of RoboScape tasks at the policy's rate (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        scenes: Sequence[SceneSpec],
        instructions: Mapping[str, np.ndarray],
        frame_skip: int,
        episode_steps: int,
        image_size: int = 128,
        task_params: TaskParams | None = None,
        control_freq: int = 25,
        sim_freq: int = 100,
        robot_visual_detail: float | None = 0.05,
        shader: str = "minimal",
        terminate_on_success: bool = True,
    ):
        if not scenes:
            raise ValueError("a policy environment needs at least one scene")
        if frame_skip < 1 or episode_steps < 1:
            raise ValueError("frame_skip and episode_steps must be >= 1")
        self.scenes = {s.scene_id: s for s in scenes}
        self.task_params = task_params or TaskParams()
        missing = sorted({instruction(s, self.task_params) for s in scenes} - set(instructions))
        if missing:
            raise KeyError(f"no instruction embedding for {missing[:3]}")
        self.instructions = {k: np.asarray(v, dtype=np.float32) for k, v in instructions.items()}
        dim = len(next(iter(self.instructions.values())))
        self.frame_skip, self.episode_steps, self.terminate_on_success = frame_skip, episode_steps, terminate_on_success
        self.env_kwargs = dict(
            image_size=image_size,
            obs_mode="none",
            task_params=self.task_params,
            control_freq=control_freq,
            sim_freq=sim_freq,
            max_episode_steps=episode_steps * frame_skip + 100,
            robot_visual_detail=robot_visual_detail,
            shader=shader,
        )
        self.observation_space = observation_space(image_size, dim)
        low, high = action_bounds(frame_skip)
        self.action_space = gym.spaces.Box(low, high, dtype=np.float32)
        self._envs: dict[str, Any] = {}  # task -> ManiSkill env
        self.scene: SceneSpec | None = None
        self._loaded: dict[str, SceneSpec] = {}  # task -> the scene its env holds
        self._frame: np.ndarray | None = None
        self._steps = 0

    # ------------------------------------------------------------------ simulator
    def _env(self, scene: SceneSpec, seed: int):
        env = self._envs.get(scene.task)
        if env is None:
            env = self._envs[scene.task] = make_env(scene, **self.env_kwargs)
            env.reset(seed=seed)
            self._loaded[scene.task] = scene
        if self._loaded[scene.task] != scene:
            env.reset(seed=seed, options={"reconfigure": True, "scene": scene})
            self._loaded[scene.task] = scene
        return env

    def _render(self) -> np.ndarray:
        base = self._envs[self.scene.task].unwrapped
        base.scene.update_render(update_sensors=True, update_human_render_cameras=False)
        camera = base.scene.sensors["third_view"]
        camera.capture()
        rgb = camera.get_obs(rgb=True, depth=False, segmentation=False, position=False)["rgb"]
        return rgb[0, ..., :3].cpu().numpy().astype(np.uint8)

    def _obs(self, frame: np.ndarray, prev: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "rgb": frame,
            "prev_rgb": prev,
            "instruction": self.instructions[instruction(self.scene, self.task_params)],
        }

    def success(self) -> bool:
        return bool(self._envs[self.scene.task].unwrapped.evaluate()["success"].item())

    # ------------------------------------------------------------------ gymnasium
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "scene" in options:
            scene = _scene(options["scene"], self.scenes)
        else:
            ids = sorted(self.scenes)
            scene = self.scenes[ids[int(self.np_random.integers(len(ids)))]]
        episode_seed = (
            int(options["episode_seed"]) if "episode_seed" in options else int(self.np_random.integers(2**31))
        )
        self.scene = scene
        env = self._env(scene, episode_seed)
        env.reset(seed=episode_seed)
        self._steps = 0
        self._frame = self._render()
        info = {"scene_id": scene.scene_id, "episode_seed": episode_seed, "success": self.success()}
        return self._obs(self._frame, self._frame), info

    def step(self, action):
        if self.scene is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            raise ValueError(f"actions must have shape {self.action_space.shape}, got {action.shape}")
        self._steps += 1
        truncated = self._steps >= self.episode_steps
        if not np.all(np.isfinite(action)):
            info = {"success": False, "action_clipped": False, "failure": "nonfinite_action"}
            return self._obs(self._frame, self._frame), 0.0, True, truncated, info
        clipped = np.clip(action, self.action_space.low, self.action_space.high)
        control = split_action(clipped, self.frame_skip)
        env = self._envs[self.scene.task]
        rewards = []
        for _ in range(self.frame_skip):
            _, reward, _, _, _ = env.step(control)
            rewards.append(float(torch.as_tensor(reward).item()))
        prev, self._frame = self._frame, self._render()
        success = self.success()
        info = {"success": success, "action_clipped": bool(np.any(clipped != action)), "failure": None}
        terminated = success and self.terminate_on_success
        return self._obs(self._frame, prev), float(np.mean(rewards)), terminated, truncated, info

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()
