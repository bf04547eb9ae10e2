"""RL w. ManiSkill (rule ``rl_maniskill``, the paper's simulator baseline): PPO from the SFT policy,
in its training scenes, with each task's rule-based dense reward, in CPU ManiSkill environments that
run in parallel worker processes (one simulation per process, the low-poly robot meshes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from roboscape.policy.loading import load_policy
from roboscape.rl.ppo import PPO, PPOArgs
from roboscape.sim.catalogue import SceneSpec, TaskParams
from roboscape.sim.policy_env import PolicyEnv
from roboscape.sim.vector_env import TorchVectorEnv
from roboscape.utils.io import write_json
from roboscape.utils.provenance import file_digest


@dataclass
class SimEnvConfig:
    """The ManiSkill environments PPO trains in (:class:`roboscape.sim.policy_env.PolicyEnv`)."""

    num_envs: int = 2  # environments stepped together
    asynchronous: bool = True  # each environment in its own worker process; False: one after another in this one
    frame_skip: int = 4  # control steps per policy step (the world model's frame_skip)
    episode_steps: int = 60  # policy steps before an episode is truncated
    terminate_on_success: bool = False  # end an episode (and reset it) once solved
    image_size: int = 128
    control_freq: int = 25
    sim_freq: int = 100
    robot_visual_detail: float | None = 0.05
    shader: str = "minimal"


def make_envs(
    scenes: list[SceneSpec],
    instructions: dict[str, np.ndarray],
    cfg: SimEnvConfig,
    task_params: TaskParams | None = None,
) -> TorchVectorEnv:
    """``cfg.num_envs`` policy environments over ``scenes`` (each draws its own scenes and seeds)."""
    make = partial(
        PolicyEnv,
        scenes,
        instructions,
        cfg.frame_skip,
        cfg.episode_steps,
        image_size=cfg.image_size,
        task_params=task_params,
        control_freq=cfg.control_freq,
        sim_freq=cfg.sim_freq,
        robot_visual_detail=cfg.robot_visual_detail,
        shader=cfg.shader,
        terminate_on_success=cfg.terminate_on_success,
    )
    return TorchVectorEnv([make] * cfg.num_envs, asynchronous=cfg.asynchronous)


def train_in_maniskill(
    sft_dir: str | Path,
    scenes: list[SceneSpec],
    instructions: dict[str, np.ndarray],
    env_cfg: SimEnvConfig,
    ppo: PPOArgs,
    out_dir: str | Path,
    task_params: TaskParams | None = None,
    code_digest: str | None = None,
    stop_after: int | None = None,
) -> dict:
    """PPO from the policy in ``sft_dir``; saves the result to ``out_dir/model`` and ``train.json``
    (a killed run resumes from its last checkpoint: see :mod:`roboscape.rl.ppo`)."""
    out_dir = Path(out_dir)
    policy = load_policy(sft_dir)
    envs = make_envs(scenes, instructions, env_cfg, task_params)
    try:
        policy.check_space(envs.single_observation_space)
        signature = {
            "init": file_digest(Path(sft_dir) / "model.safetensors"),
            "env": {k: v for k, v in asdict(env_cfg).items() if k != "asynchronous"},  # either way: same run
            "scenes": [s.scene_id for s in scenes],
            "code": code_digest,
        }
        result = PPO(policy, envs, ppo, out_dir, signature=signature).train(stop_after=stop_after)
    finally:
        envs.close()
    if result["updates"] * envs.num_envs * ppo.num_steps >= ppo.total_steps:
        policy.eval().save_pretrained(out_dir / "model")
        write_json(
            out_dir / "train.json",
            {
                **result,
                "scenes": [s.scene_id for s in scenes],
                "init": str(sft_dir),
                "config": {"env": asdict(env_cfg), "ppo": asdict(ppo)},
            },
        )
    return result
