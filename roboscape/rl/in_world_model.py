"""RL w. World Model (rule ``rl_world_model``, the paper's method): PPO from the SFT policy in the
world-model environment (:mod:`roboscape.rl.world_model_env`), from the real initial states of many
scenes with their imagined goals, with the world model's own reward -- or, for the baselines, a
learned reward (:mod:`roboscape.models.reward_models`).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from roboscape.models.text_encoder import load_sentences
from roboscape.models.tokenizer import Tokenizer
from roboscape.models.world_model import WorldModel
from roboscape.policy.loading import load_policy
from roboscape.rl.goals import read_goals
from roboscape.rl.ppo import PPO, PPOArgs
from roboscape.rl.world_model_env import InitialStates, RewardConfig, WMEnvConfig, WorldModelEnv, make_reward
from roboscape.utils.io import write_json
from roboscape.utils.provenance import file_digest


def initial_state_pool(
    goals_paths: list[str | Path], instructions_path: str | Path, scene_ids: list[str] | None = None
) -> InitialStates:
    """The in-domain initial states of the goals files (of the scenes ``scene_ids``, if given),
    with their goals and their instructions' sentence embeddings."""
    embeddings = load_sentences(instructions_path)
    frames, goals, texts, scenes = [], [], [], []
    for path in goals_paths:
        g = read_goals(path)
        keep = [
            i
            for i, (split, scene) in enumerate(zip(g["split"], g["scene_id"], strict=True))
            if split == "ind" and (scene_ids is None or scene in scene_ids)
        ]
        frames.append(g["initial"][keep])
        goals.append(g["goal"][keep])
        texts += [embeddings[g["instruction"][i]].numpy() for i in keep]
        scenes += [g["scene_id"][i] for i in keep]
    if not scenes:
        raise ValueError(f"no in-domain initial state of scenes {scene_ids} in {[str(p) for p in goals_paths]}")
    return InitialStates(np.concatenate(frames), np.concatenate(goals), np.stack(texts), scenes)


def train_in_world_model(
    sft_dir: str | Path,
    wm_dir: str | Path,
    tokenizer_dir: str | Path,
    states: InitialStates,
    env_cfg: WMEnvConfig,
    reward_cfg: RewardConfig,
    ppo: PPOArgs,
    out_dir: str | Path,
    reward_dir: str | Path | None = None,
    code_digest: str | None = None,
    stop_after: int | None = None,
    device: str = "cpu",
) -> dict:
    """PPO from the policy in ``sft_dir`` (with the learned reward in ``reward_dir`` if the reward
    is a baseline); saves the result to ``out_dir/model`` and ``train.json``
    (a killed run resumes from its last checkpoint: see :mod:`roboscape.rl.ppo`). The world model,
    its reward and the policy run on ``device``; PPO's rollout buffer stays on the CPU."""
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"RL w. World Model was asked to run on {device!r}, but this machine has no GPU")
    out_dir = Path(out_dir)
    policy = load_policy(sft_dir, device)
    wm = WorldModel.from_pretrained(wm_dir, device)
    tokenizer = Tokenizer.from_pretrained(tokenizer_dir, device)
    reward = make_reward(reward_cfg, env_cfg.num_envs, reward_dir, device)
    envs = WorldModelEnv(wm, tokenizer, states, env_cfg, reward, seed=ppo.seed)
    policy.check_space(envs.single_observation_space)
    signature = {
        "init": file_digest(Path(sft_dir) / "model.safetensors"),
        "world_model": file_digest(Path(wm_dir) / "model.safetensors"),
        "tokenizer": file_digest(Path(tokenizer_dir) / "model.safetensors"),
        "env": asdict(env_cfg),
        "reward": asdict(reward_cfg),
        "reward_model": None if reward_dir is None else file_digest(Path(reward_dir) / "model.safetensors"),
        "initial_states": len(states.scene_ids),
        "code": code_digest,
    }
    result = PPO(policy, envs, ppo, out_dir, signature=signature).train(stop_after=stop_after)
    if result["updates"] * envs.num_envs * ppo.num_steps >= ppo.total_steps:
        policy.eval().save_pretrained(out_dir / "model")
        write_json(
            out_dir / "train.json",
            {
                **result,
                "init": str(sft_dir),
                "world_model": str(wm_dir),
                "reward_model": None if reward_dir is None else str(reward_dir),
                "scenes": sorted(set(states.scene_ids)),
                "initial_states": len(states.scene_ids),
                "config": {"env": asdict(env_cfg), "reward": asdict(reward_cfg), "ppo": asdict(ppo)},
            },
        )
    return result
