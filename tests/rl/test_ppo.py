"""PPO on a small task with a known solution: it learns it, it leaves the policy alone at learning
rate 0, and a run killed and resumed equals an uninterrupted one."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pandas as pd
import pytest
import torch
from torch import nn

from roboscape.policy.mlp import ActOutput
from roboscape.rl.ppo import PPO, PPOArgs, RolloutBuffer


class PointMass:
    """N point masses in the plane, to be brought to the origin, with roboscape's vector-env contract:
    obs ``{"state": (N, 2)}``, actions (N, 2) in [-1, 1], x' = x + 0.1 a, reward -|x'|; terminated
    at |x'| < 0.05 (reward +1), truncated after 10-30 steps (drawn per episode): episodes end at
    different steps, so resets are partial. Driving straight at the origin is optimal."""

    def __init__(self, num_envs: int):
        self.num_envs = num_envs
        self.single_action_space = gym.spaces.Box(-1, 1, (2,))
        self.generator = torch.Generator()

    def _new(self, mask: torch.Tensor) -> None:
        n = int(mask.sum())
        self.x[mask] = torch.rand(n, 2, generator=self.generator) * 2 - 1
        self.limit[mask] = torch.randint(10, 31, (n,), generator=self.generator)
        self.t[mask] = 0

    def reset(self, seed=None):
        self.generator.manual_seed(seed[0] if isinstance(seed, list) else (seed or 0))
        self.x, self.t = torch.zeros(self.num_envs, 2), torch.zeros(self.num_envs, dtype=torch.long)
        self.limit = torch.zeros(self.num_envs, dtype=torch.long)
        self._new(torch.ones(self.num_envs, dtype=torch.bool))
        self.returns, self.success = torch.zeros(self.num_envs), torch.zeros(self.num_envs, dtype=torch.bool)
        return {"state": self.x.clone()}, {}

    def step(self, actions):
        self.x = self.x + 0.1 * actions.clamp(-1, 1)
        self.t += 1
        distance = self.x.norm(dim=1)
        terminated = distance < 0.05
        truncated = (self.t >= self.limit) & ~terminated
        reward = torch.where(terminated, torch.ones(self.num_envs), -distance)
        self.returns += reward
        self.success |= terminated
        info = {}
        ended = terminated | truncated
        if ended.any():
            info = {
                "final_observation": {"state": self.x.clone()},
                "_final_info": ended,
                "final_info": {
                    "episode": {
                        "return": self.returns.clone(),
                        "episode_len": self.t.float(),
                        "success_once": self.success.float(),
                        "success_at_end": terminated.float(),
                    }
                },
            }
            self.returns[ended], self.success[ended] = 0, False
            self._new(ended)
        return {"state": self.x.clone()}, reward, terminated, truncated, info


class GaussianAgent(nn.Module):
    """The agent interface of roboscape's policies, for a state vector."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.actor = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 2))
        self.critic = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 1))
        self.log_std = nn.Parameter(torch.full((2,), -0.5))

    def _dist(self, obs):
        mean = self.actor(obs["state"])
        return torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean))

    def value(self, obs):
        return self.critic(obs["state"]).squeeze(-1)

    def act(self, obs, deterministic=False, generator=None):
        dist = self._dist(obs)
        action = (
            dist.mean if deterministic else dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=generator)
        )
        return ActOutput(action, dist.log_prob(action).sum(-1), self.value(obs))

    def evaluate(self, obs, action):
        dist = self._dist(obs)
        return dist.log_prob(action).sum(-1), dist.entropy().sum(-1), self.value(obs)


class SharedAgent(GaussianAgent):
    """The agent with one encoder under its actor and its value head."""

    def __init__(self, seed: int = 0):
        super().__init__(seed)
        self.encoder = nn.Sequential(nn.Linear(2, 2), nn.Tanh())

    def _dist(self, obs):
        return super()._dist({"state": self.encoder(obs["state"])})

    def value(self, obs):
        return self.critic(self.encoder(obs["state"])).squeeze(-1)


ARGS = dict(
    num_steps=32,
    update_epochs=4,
    num_minibatches=4,
    learning_rate=3e-3,
    gamma=0.95,
    gae_lambda=0.95,
    target_kl=None,
    checkpoint_every=5,
)


def test_ppo_drives_the_point_masses_home(tmp_path):
    """A policy that stands still scores about -15 per episode, driving straight home about -2."""
    agent = GaussianAgent()
    result = PPO(agent, PointMass(16), PPOArgs(total_steps=40 * 16 * 32, **ARGS), tmp_path).train(progress=False)
    assert result["updates"] == 40
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert metrics["update"].tolist() == list(range(1, 41))
    early, late = metrics["return"].iloc[:3].mean(), metrics["return"].iloc[-5:].mean()
    assert early < -6 and late > -3.5, (early, late)
    assert metrics["success_once"].iloc[-5:].mean() > 0.8
    assert set(metrics.columns) >= {
        "return",
        "success_once",
        "success_at_end",
        "approx_kl",
        "entropy",
        "env_steps_per_s",
        "wall_time_s",
        "value_loss",
        "policy_loss",
        "explained_variance",
    }


def test_an_update_with_learning_rate_zero_leaves_the_policy_bit_identical(tmp_path):
    agent = GaussianAgent()
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    PPO(agent, PointMass(8), PPOArgs(total_steps=2 * 8 * 32, **{**ARGS, "learning_rate": 0.0}), tmp_path).train(
        progress=False
    )
    torch.testing.assert_close(agent.state_dict(), before, rtol=0, atol=0)


@pytest.mark.parametrize("detach", [True, False])
def test_the_critic_warmup_leaves_the_actor_alone_when_the_critic_is_detached(tmp_path, detach):
    """A detached critic's warmup moves the value head only (an SFT actor stays as it was); an
    attached one moves the shared encoder too."""
    agent = SharedAgent()
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    args = PPOArgs(total_steps=2 * 8 * 32, critic_warmup_updates=2, detach_critic=detach, **ARGS)
    PPO(agent, PointMass(8), args, tmp_path).train(progress=False)
    after = agent.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved == (
        {"critic.0.weight", "critic.0.bias", "critic.2.weight", "critic.2.bias"}
        | (set() if detach else {"encoder.0.weight", "encoder.0.bias"})
    )


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    args = PPOArgs(total_steps=12 * 8 * 32, **ARGS)
    straight = GaussianAgent()
    PPO(straight, PointMass(8), args, tmp_path / "a").train(progress=False)
    # killed after update 7 (last checkpoint: 5), resumed by a new process with fresh weights
    PPO(GaussianAgent(), PointMass(8), args, tmp_path / "b").train(stop_after=7, progress=False)
    resumed = GaussianAgent(seed=99)
    result = PPO(resumed, PointMass(8), args, tmp_path / "b").train(progress=False)
    assert result["resumed_from_update"] == 5 and result["updates"] == 12
    torch.testing.assert_close(resumed.state_dict(), straight.state_dict(), rtol=0, atol=0)
    a, b = pd.read_csv(tmp_path / "a" / "metrics.csv"), pd.read_csv(tmp_path / "b" / "metrics.csv")
    assert b["update"].tolist() == list(range(1, 13))  # no rows left over from the killed session
    pd.testing.assert_series_equal(a["return"], b["return"])


class SavingAgent(GaussianAgent):
    """The agent with the ``save_pretrained`` that snapshots need."""

    def save_pretrained(self, out_dir):
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), out_dir / "weights.pt")


def test_snapshots_span_the_run_and_a_resumed_run_has_the_same(tmp_path):
    args = PPOArgs(total_steps=12 * 8 * 32, snapshots=3, **ARGS)  # at updates 0, 4, 8 and 12
    start, straight = SavingAgent().state_dict(), SavingAgent()
    PPO(straight, PointMass(8), args, tmp_path / "a").train(progress=False)
    PPO(SavingAgent(), PointMass(8), args, tmp_path / "b").train(stop_after=7, progress=False)
    assert not (tmp_path / "b" / "snapshots").exists()  # published once the run is complete
    PPO(SavingAgent(seed=99), PointMass(8), args, tmp_path / "b").train(progress=False)  # resumes from update 5

    def snapshot(run: str, update: int) -> dict:
        return torch.load(tmp_path / run / "snapshots" / f"update_{update:08d}" / "weights.pt")

    for run in "ab":
        rows = pd.read_csv(tmp_path / run / "snapshots" / "snapshots.csv")
        assert rows["update"].tolist() == [0, 4, 8, 12]
        assert rows["env_steps"].tolist() == [0, 4 * 256, 8 * 256, 12 * 256]
        assert rows["wall_time_s"].iloc[0] == 0 and rows["wall_time_s"].is_monotonic_increasing
    torch.testing.assert_close(snapshot("a", 0), start, rtol=0, atol=0)
    torch.testing.assert_close(snapshot("a", 12), straight.state_dict(), rtol=0, atol=0)
    assert not all(torch.equal(snapshot("a", 4)[k], start[k]) for k in start)
    for update in (0, 4, 8, 12):
        torch.testing.assert_close(snapshot("a", update), snapshot("b", update), rtol=0, atol=0)


def test_checkpoints_of_another_configuration_are_set_aside(tmp_path):
    PPO(GaussianAgent(), PointMass(4), PPOArgs(total_steps=5 * 4 * 32, **ARGS), tmp_path).train(progress=False)
    other = PPO(GaussianAgent(), PointMass(4), PPOArgs(total_steps=5 * 4 * 32, **{**ARGS, "gamma": 0.5}), tmp_path)
    assert other.train(stop_after=1, progress=False)["resumed_from_update"] == 0
    assert list(tmp_path.glob("checkpoints.stale-*"))


def test_a_truncated_episode_is_bootstrapped_and_a_terminated_one_is_not():
    obs = {"state": torch.zeros(2, 2)}
    buffer = RolloutBuffer(obs, 2, num_steps=2)
    buffer.rewards[:] = 1.0
    buffer.values[:] = 10.0
    buffer.final_values[1, 0] = 10.0  # env 0 truncated at the last step: bootstrapped from its final value
    adv = buffer.advantages(
        next_value=torch.tensor([99.0, 99.0]), next_done=torch.tensor([1.0, 1.0]), gamma=0.5, lam=1.0
    )
    # env 0: delta_1 = 1 + 0.5 * 10 - 10 = -4; delta_0 = 1 + 0.5 * 10 - 10 = -4 -> adv_0 = -4 + 0.5 * -4 = -6
    # env 1 (terminated): delta_1 = 1 - 10 = -9; adv_0 = -4 + 0.5 * -9 = -8.5
    assert adv[:, 0].tolist() == [-6.0, -4.0] and adv[:, 1].tolist() == [-8.5, -9.0]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="num_steps"):
        PPOArgs(num_steps=0)
