"""Several environments stepped as one, with ManiSkill's vector-env contract in torch tensors.

The contract (``mani_skill.vector.wrappers.gymnasium.ManiSkillVectorEnv``'s, which the
world-model environment follows too, so that one PPO trains in both):

- ``reset(seed)`` -> (obs, info); ``step(actions)`` -> (obs, reward, terminated, truncated, info),
  every value a tensor with the environments first (obs a dict of tensors);
- **auto-reset**: an environment whose episode ends is reset within the same step; ``obs`` is then
  its new first observation, ``info["final_observation"]`` holds the last one (every environment's
  row; meaningful where ``info["_final_info"]``), and ``info["final_info"]`` what the ended
  episodes reported;
- **episode metrics** (``record_metrics``): ``info["final_info"]["episode"]`` has each ended
  episode's ``return``, ``episode_len``, ``success_once`` and ``success_at_end``.

The environments run in worker processes (gymnasium's ``AsyncVectorEnv``: one CPU simulation per
process) or, with ``asynchronous=False``, one after another in this process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv


def to_tensors(obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in obs.items()}


class TorchVectorEnv:
    """``env_fns`` made into one vector environment (see the module docstring)."""

    def __init__(
        self, env_fns: Sequence[Callable[[], gym.Env]], asynchronous: bool = True, record_metrics: bool = True
    ):
        kind = AsyncVectorEnv if asynchronous and len(env_fns) > 1 else SyncVectorEnv
        kwargs = {"context": "spawn"} if kind is AsyncVectorEnv else {}
        self.envs = kind(list(env_fns), autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
        self.num_envs = len(env_fns)
        self.single_observation_space = self.envs.single_observation_space
        self.single_action_space = self.envs.single_action_space
        self.record_metrics = record_metrics
        self._return = torch.zeros(self.num_envs)
        self._length = torch.zeros(self.num_envs, dtype=torch.long)
        self._success_once = torch.zeros(self.num_envs, dtype=torch.bool)

    def reset(self, seed: int | list[int] | None = None) -> tuple[dict[str, torch.Tensor], dict]:
        obs, info = self.envs.reset(seed=seed)
        self._return.zero_()
        self._length.zero_()
        self._success_once.zero_()
        return to_tensors(obs), info

    def step(self, actions: torch.Tensor):
        actions = torch.as_tensor(actions, dtype=torch.float32)
        if actions.shape != (self.num_envs, *self.single_action_space.shape):
            raise ValueError(
                f"actions must be ({self.num_envs}, {self.single_action_space.shape[0]}), got {tuple(actions.shape)}"
            )
        obs, reward, terminated, truncated, info = self.envs.step(actions.cpu().numpy())
        reward = torch.as_tensor(reward, dtype=torch.float32)
        terminated, truncated = torch.as_tensor(terminated), torch.as_tensor(truncated)
        obs = to_tensors(obs)
        done = terminated | truncated
        if not done.any():
            success = torch.as_tensor(info.get("success", np.zeros(self.num_envs, bool)), dtype=torch.bool)
            self._track(reward, success)
            return obs, reward, terminated, truncated, info
        # Ended episodes report through final_info; the others' flags are in info itself.
        final = info.pop("final_info")
        ended = torch.as_tensor(info.pop("_final_info"))
        success = torch.where(
            ended,
            torch.as_tensor(final.get("success", np.zeros(self.num_envs, bool)), dtype=torch.bool),
            torch.as_tensor(info.get("success", np.zeros(self.num_envs, bool)), dtype=torch.bool),
        )
        self._track(reward, success)
        final_obs = {k: v.clone() for k, v in obs.items()}
        for i in torch.nonzero(ended).flatten().tolist():
            for k, v in info["final_obs"][i].items():
                final_obs[k][i] = torch.from_numpy(np.asarray(v))
        info.pop("final_obs")
        info.pop("_final_obs", None)
        final_info = {k: v for k, v in final.items() if not k.startswith("_")}
        if self.record_metrics:
            final_info["episode"] = {
                "return": self._return.clone(),
                "episode_len": self._length.clone(),
                "success_once": self._success_once.clone(),
                "success_at_end": success.clone(),
            }
            self._return[ended] = 0
            self._length[ended] = 0
            self._success_once[ended] = False
        info.update(final_observation=final_obs, final_info=final_info, _final_info=ended)
        return obs, reward, terminated, truncated, info

    def _track(self, reward: torch.Tensor, success: torch.Tensor) -> None:
        self._return += reward
        self._length += 1
        self._success_once |= success

    def close(self) -> None:
        self.envs.close()
