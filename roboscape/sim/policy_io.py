"""What a policy sees and sends, apart from any simulator: the observation and action spaces at the
policy's rate, shared by the ManiSkill environment (:mod:`roboscape.sim.policy_env`, whose docstring
says what they are) and the world model's (:mod:`roboscape.rl.world_model_env`), and how one policy
action becomes ``frame_skip`` control steps and recorded control actions become policy actions.

It imports no simulator, so that the stages that only need these (the world model's environment,
the policy's training data) start without ManiSkill, and their rules' library inputs leave it out.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

OBSERVATION_KEYS = ("rgb", "prev_rgb", "instruction")
GRIPPER = 6  # the action's gripper dimension; 0-5 are the end-effector delta


def action_bounds(frame_skip: int) -> tuple[np.ndarray, np.ndarray]:
    """The policy's action bounds at ``frame_skip`` control steps per policy step."""
    high = np.array([frame_skip] * GRIPPER + [1.0], dtype=np.float32)
    return -high, high


def observation_space(image_size: int, instruction_dim: int) -> gym.spaces.Dict:
    """The third-view frame now and one policy step ago, and the instruction's embedding."""
    frame = gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
    # the instruction is a unit vector (roboscape.models.text_encoder's sentence embedding)
    text = gym.spaces.Box(-1.0, 1.0, (instruction_dim,), np.float32)
    return gym.spaces.Dict({"rgb": frame, "prev_rgb": frame, "instruction": text})


def split_action(action: np.ndarray, frame_skip: int) -> np.ndarray:
    """One policy action -> the action of each of its ``frame_skip`` control steps: the delta split
    evenly, the gripper held."""
    step = np.asarray(action, dtype=np.float32).copy()
    step[:GRIPPER] /= frame_skip
    return step


def group_actions(actions: np.ndarray, frame_skip: int) -> np.ndarray:
    """Recorded control actions (T, 7) -> policy actions (ceil(T / k), 7): each group's deltas
    summed, its last gripper command (the last group may be shorter)."""
    groups = [actions[i : i + frame_skip] for i in range(0, len(actions), frame_skip)]
    return np.stack([np.concatenate([g[:, :GRIPPER].sum(0), g[-1, GRIPPER:]]) for g in groups]).astype(np.float32)
