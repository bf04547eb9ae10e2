"""PPO for every environment and policy (cleanrl's one-file style; ManiSkill's PPO baselines are the
model), written here rather than taken from a library because its two environments are batched
torch environments with ManiSkill's auto-reset contract and its policies range from a small CNN to a
token-decoding VLA, which stable-baselines3's numpy buffers and torchrl's TensorDict plumbing fight.

The environment is any vector environment with :mod:`roboscape.sim.vector_env`'s contract (tensors,
auto-reset with ``final_observation`` / ``final_info``, episode metrics); the agent anything with
``act(obs, deterministic, generator) -> (action, log_prob, value)``, ``evaluate(obs, action) ->
(log_prob, entropy, value)``, ``value(obs)``, its value head as ``critic`` and, when snapshots are
asked for, ``save_pretrained(dir)``, such as :class:`roboscape.policy.mlp.MLPPolicy`.

The algorithm: rollouts of ``num_steps`` per environment with partial resets; generalised advantage
estimation that bootstraps a truncated episode from the value of its ``final_observation`` (a
terminated one from nothing); ``update_epochs`` passes of ``num_minibatches`` minibatches with the
clipped surrogate, a value loss and an entropy bonus; gradient-norm clipping; early stop of an
update's epochs when the approximate KL passes ``target_kl``. ``critic_warmup_updates`` first trains
the value head alone, so that a policy from SFT is not pushed around by a random critic; with
``detach_critic`` the value loss never reaches the encoder the actor shares, so the warmup leaves
the actor exactly as SFT left it (why it matters: docs/rl-history.md).

Checkpoints, every ``checkpoint_every`` updates, hold the agent, the optimizer and the random
generators; every environment is reset (with seeds derived from the update) at each checkpoint
boundary, so a run killed and resumed from its last checkpoint equals an uninterrupted one. Curves
go to ``metrics.csv`` and TensorBoard, one row per update.

Snapshots (``snapshots`` > 0) are the policy at evenly spaced updates of the run, the starting
policy and the final one included, each with its environment steps and training seconds, so that
learning curves can be measured where it matters, in the simulator (the paper's Figure 2). They are
kept with the checkpoints (a resumed run keeps those it has, and a run of another signature sets them
aside with the checkpoints) and published to ``snapshots/`` with ``snapshots/snapshots.csv`` once
the run is complete.
"""

from __future__ import annotations

import csv
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from roboscape.utils.io import atomic_path


@dataclass
class PPOArgs:
    total_steps: int = 100_000
    """environment steps to train for, all environments together"""
    num_steps: int = 50
    """steps per environment in one rollout: an update learns from num_envs x num_steps transitions"""
    update_epochs: int = 4
    """passes over each rollout"""
    num_minibatches: int = 8
    """minibatches per pass"""
    learning_rate: float = 3e-4
    """Adam's learning rate"""
    anneal_lr: bool = False
    """decay the learning rate linearly to 0 over the run"""
    gamma: float = 0.8
    """discount factor (ManiSkill's PPO default for its dense rewards)"""
    gae_lambda: float = 0.9
    """the lambda of generalised advantage estimation"""
    clip_coef: float = 0.2
    """the surrogate's ratio clipping"""
    clip_vloss: bool = False
    """clip the value loss around the rollout's values too"""
    vf_coef: float = 0.5
    """weight of the value loss"""
    ent_coef: float = 0.0
    """weight of the entropy bonus"""
    max_grad_norm: float = 0.5
    """gradient-norm clipping"""
    target_kl: float | None = 0.2
    """stop an update's epochs once the approximate KL to the rollout's policy passes this (null: never)"""
    norm_adv: bool = True
    """normalise advantages within each minibatch"""
    critic_warmup_updates: int = 0
    """the first updates train the value head only"""
    detach_critic: bool = True
    """the value loss trains the agent's value head (``agent.critic``) only, not the encoder the
    actor shares: the actor of an SFT policy moves by its own loss only, and the critic's warmup
    leaves it exactly as it was"""
    reward_scale: float = 1.0
    """rewards are multiplied by this before learning (the logged returns are not)"""
    checkpoint_every: int = 10
    """updates between checkpoints; every environment is reset at each checkpoint boundary"""
    keep_checkpoints: int = 2
    """checkpoints kept on disk"""
    snapshots: int = 0
    """policies saved at this many evenly spaced updates besides the starting one (the last is the
    final policy), for learning curves measured in the simulator; 0: none"""
    seed: int = 0
    """seed of the environments' resets, the action sampling and the minibatches"""

    def __post_init__(self):
        for name in (
            "total_steps",
            "num_steps",
            "update_epochs",
            "num_minibatches",
            "checkpoint_every",
            "keep_checkpoints",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"PPO's {name} must be >= 1")
        if self.snapshots < 0:
            raise ValueError("PPO's snapshots must be >= 0")


def _episode_means(episodes: list[dict]) -> dict[str, float]:
    """Means of the ended episodes' metrics (NaN where none ended)."""
    keys = ("return", "episode_len", "success_once", "success_at_end")
    return {k: sum(e[k] for e in episodes) / len(episodes) if episodes else float("nan") for k in keys}


def _index(obs: dict[str, torch.Tensor], i) -> dict[str, torch.Tensor]:
    return {k: v[i] for k, v in obs.items()}


class RolloutBuffer:
    """One rollout: observations, actions, log-probabilities, rewards, dones, values (T, N, ...)."""

    def __init__(self, obs: dict[str, torch.Tensor], action_dim: int, num_steps: int):
        n = next(iter(obs.values())).shape[0]
        self.obs = {k: torch.zeros((num_steps, *v.shape), dtype=v.dtype) for k, v in obs.items()}
        self.actions = torch.zeros(num_steps, n, action_dim)
        self.log_probs, self.rewards, self.values = (torch.zeros(num_steps, n) for _ in range(3))
        self.dones = torch.zeros(num_steps, n)  # 1 where the step's observation starts a new episode
        self.final_values = torch.zeros(num_steps, n)  # value of the last observation of a truncated episode

    def advantages(self, next_value: torch.Tensor, next_done: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
        T = self.rewards.shape[0]
        advantages = torch.zeros_like(self.rewards)
        last = torch.zeros_like(next_value)
        for t in reversed(range(T)):
            if t == T - 1:
                not_done, next_values = 1.0 - next_done, next_value
            else:
                not_done, next_values = 1.0 - self.dones[t + 1], self.values[t + 1]
            delta = self.rewards[t] + gamma * (not_done * next_values + self.final_values[t]) - self.values[t]
            advantages[t] = last = delta + gamma * lam * not_done * last
        return advantages


class PPO:
    """Trains ``agent`` in ``envs`` (see the module docstring); ``signature``: what else defines the
    run (checkpoints of another signature are set aside, not resumed)."""

    def __init__(
        self, agent: torch.nn.Module, envs: Any, args: PPOArgs, out_dir: str | Path, signature: dict | None = None
    ):
        self.agent, self.envs, self.args = agent, envs, args
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.signature = {"ppo": asdict(args), "num_envs": envs.num_envs, **(signature or {})}
        self.batch = envs.num_envs * args.num_steps
        self.num_updates = math.ceil(args.total_steps / self.batch)
        self.optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
        # where the value loss may go: the value head alone, or (None) every parameter it reaches
        self.value_params = list(agent.critic.parameters()) if args.detach_critic else None
        self.generator = torch.Generator().manual_seed(args.seed)
        self.update = 0  # updates done
        self.wall_time = 0.0  # seconds of training, over every session of the run
        self.start_update = 0
        self.snapshot_updates = sorted(
            {round(k * self.num_updates / args.snapshots) for k in range(args.snapshots + 1)}
            if args.snapshots
            else set()
        )

    # ------------------------------------------------------------------ checkpoints
    def _agent_state(self) -> dict[str, torch.Tensor]:
        """What a checkpoint keeps of the agent: what training changes, where the agent says
        (``trained_state()``: an OpenVLA policy over downloaded weights keeps its LoRA and value head,
        not the frozen 7 B base), else its whole state."""
        trained = getattr(self.agent, "trained_state", None)
        return trained() if trained is not None else self.agent.state_dict()

    def _checkpoints(self) -> list[Path]:
        return sorted(self.ckpt_dir.glob("update_*.pt"))

    def save_checkpoint(self) -> None:
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "agent": self._agent_state(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "update": self.update,
            "wall_time": self.wall_time,
            "signature": self.signature,
        }
        with atomic_path(self.ckpt_dir / f"update_{self.update:08d}.pt") as tmp:
            torch.save(state, tmp)
        for old in self._checkpoints()[: -self.args.keep_checkpoints]:
            old.unlink()

    def resume(self) -> bool:
        checkpoints = self._checkpoints()
        if not checkpoints:
            return False
        state = torch.load(checkpoints[-1], weights_only=False)
        if state["signature"] != self.signature:
            stale = self.ckpt_dir.with_name(f"checkpoints.stale-{int(time.time())}")
            self.ckpt_dir.rename(stale)
            print(
                f"checkpoints in {self.ckpt_dir} belong to another configuration: moved to {stale.name}, "
                "starting afresh"
            )
            return False
        if set(state["agent"]) != set(self._agent_state()):
            raise ValueError(f"{checkpoints[-1]} holds other tensors than this agent trains")
        self.agent.load_state_dict(state["agent"], strict=len(state["agent"]) == len(self.agent.state_dict()))
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.update, self.wall_time = state["update"], state["wall_time"]
        return True

    # ------------------------------------------------------------------ snapshots
    SNAPSHOT_FIELDS = ("update", "env_steps", "wall_time_s", "path")

    @property
    def snapshot_staging(self) -> Path:
        return self.ckpt_dir / "snapshots"

    def _snapshot_rows(self) -> list[dict]:
        index = self.snapshot_staging / "snapshots.csv"
        if not index.exists():
            return []
        with open(index) as fh:
            return list(csv.DictReader(fh))

    def _write_snapshot_rows(self, rows: list[dict]) -> None:
        with atomic_path(self.snapshot_staging / "snapshots.csv") as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.SNAPSHOT_FIELDS)
            writer.writeheader()
            writer.writerows(rows)

    def snapshot(self) -> None:
        """Save the policy as it is at ``self.update`` if that is a snapshot update, in place of
        what a killed session saved from there on."""
        if self.update not in self.snapshot_updates:
            return
        rows = [r for r in self._snapshot_rows() if int(r["update"]) < self.update]
        name = f"update_{self.update:08d}"
        self.agent.save_pretrained(self.snapshot_staging / name)
        rows.append(
            {"update": self.update, "env_steps": self.update * self.batch, "wall_time_s": self.wall_time, "path": name}
        )
        self._write_snapshot_rows(rows)

    def publish_snapshots(self) -> None:
        """Copy the complete run's snapshots to ``out_dir/snapshots`` (with no snapshots asked for,
        an index without rows)."""
        rows = self._snapshot_rows()
        if [int(r["update"]) for r in rows] != self.snapshot_updates:
            raise RuntimeError(
                f"snapshots of updates {self.snapshot_updates} expected, {self.snapshot_staging} has {rows}"
            )
        if not rows:
            self._write_snapshot_rows([])
        shutil.copytree(self.snapshot_staging, self.out_dir / "snapshots", dirs_exist_ok=True)

    # ------------------------------------------------------------------ metrics
    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.csv"

    def _truncate_metrics(self) -> None:
        """Drop rows logged past the update training restarts from: the log matches the weights."""
        if not self.metrics_path.exists():
            return
        with open(self.metrics_path) as fh:
            reader = csv.DictReader(fh)
            fields, rows = reader.fieldnames, [r for r in reader if int(r["update"]) <= self.update]
        with open(self.metrics_path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    def _log(self, row: dict, writer) -> None:
        new = not self.metrics_path.exists()
        with open(self.metrics_path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)
        for key, value in row.items():
            if key not in ("update", "env_steps") and value == value:  # NaN: no episode ended
                writer.add_scalar(key, value, row["env_steps"])

    # ------------------------------------------------------------------ training
    def reset_seeds(self) -> list[int]:
        """The environments' reset seeds at update ``self.update`` (a checkpoint boundary)."""
        base = (self.args.seed * 1_000_003 + self.update * 7_919) % 2**31
        return [(base + i) % 2**31 for i in range(self.envs.num_envs)]

    def collect(self, obs: dict[str, torch.Tensor], next_done: torch.Tensor, episodes: list[dict]):
        """One rollout from ``obs``; returns the buffer, the last observation and done flags."""
        args, agent = self.args, self.agent
        buffer = None
        for step in range(args.num_steps):
            with torch.no_grad():
                out = agent.act(obs, generator=self.generator)
            if buffer is None:
                buffer = RolloutBuffer(obs, out.action.shape[-1], args.num_steps)
            for k, v in obs.items():
                buffer.obs[k][step] = v
            buffer.dones[step] = next_done
            action, log_prob, value = (t.cpu() for t in out)  # the environments and the buffer are on the CPU
            buffer.actions[step], buffer.log_probs[step], buffer.values[step] = action, log_prob, value
            obs, reward, terminated, truncated, info = self.envs.step(action)
            buffer.rewards[step] = reward * args.reward_scale
            next_done = (terminated | truncated).float()
            if "final_info" in info:
                ended = info["_final_info"]
                bootstrap = ended & truncated & ~terminated
                if bootstrap.any():
                    with torch.no_grad():
                        final = _index(info["final_observation"], bootstrap)
                        buffer.final_values[step, bootstrap] = agent.value(final).float().cpu()
                metrics = info["final_info"]["episode"]
                for i in torch.nonzero(ended).flatten().tolist():
                    episodes.append({k: float(v[i]) for k, v in metrics.items()})
        return buffer, obs, next_done

    def learn(self, buffer: RolloutBuffer, advantages: torch.Tensor, critic_only: bool) -> dict[str, float]:
        args, agent = self.args, self.agent
        returns = advantages + buffer.values
        flat = lambda t: t.reshape(-1, *t.shape[2:])  # noqa: E731
        obs = {k: flat(v) for k, v in buffer.obs.items()}
        actions, log_probs, values = flat(buffer.actions), flat(buffer.log_probs), flat(buffer.values)
        advantages, returns = flat(advantages), flat(returns)
        size = max(1, self.batch // args.num_minibatches)
        stats: dict[str, list[float]] = {
            k: [] for k in ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac")
        }
        epochs_run = 0
        for _ in range(args.update_epochs):
            epochs_run += 1
            order = torch.randperm(self.batch, generator=self.generator)
            stop = False
            for start in range(0, self.batch, size):
                idx = order[start : start + size]
                new_log_prob, entropy, new_value = agent.evaluate(_index(obs, idx), actions[idx])
                new_log_prob, entropy, new_value = new_log_prob.cpu(), entropy.cpu(), new_value.cpu()
                log_ratio = new_log_prob - log_probs[idx]
                ratio = log_ratio.exp()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - log_ratio).mean()
                    stats["clipfrac"].append(((ratio - 1).abs() > args.clip_coef).float().mean().item())
                adv = advantages[idx]
                if args.norm_adv and len(idx) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)).mean()
                if args.clip_vloss:
                    clipped = values[idx] + (new_value - values[idx]).clamp(-args.clip_coef, args.clip_coef)
                    value_loss = 0.5 * torch.max((new_value - returns[idx]) ** 2, (clipped - returns[idx]) ** 2).mean()
                else:
                    value_loss = 0.5 * ((new_value - returns[idx]) ** 2).mean()
                self.optimizer.zero_grad(set_to_none=True)
                (args.vf_coef * value_loss).backward(inputs=self.value_params, retain_graph=not critic_only)
                if not critic_only:
                    (policy_loss - args.ent_coef * entropy.mean()).backward()
                torch.nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                self.optimizer.step()
                for key, value in (
                    ("policy_loss", policy_loss),
                    ("value_loss", value_loss),
                    ("entropy", entropy.mean()),
                    ("approx_kl", approx_kl),
                ):
                    stats[key].append(value.item())
                if not critic_only and args.target_kl is not None and approx_kl > args.target_kl:
                    stop = True
                    break
            if stop:
                break
        var = returns.var()
        explained = float("nan") if var == 0 else 1 - (returns - values).var().item() / var.item()
        return {**{k: sum(v) / len(v) for k, v in stats.items()}, "explained_variance": explained, "epochs": epochs_run}

    def train(self, stop_after: int | None = None, progress: bool = True) -> dict:
        """Train up to the configured steps (resuming from the last checkpoint); ``stop_after`` ends
        this call early after that many updates, as an interruption would."""
        from torch.utils.tensorboard import SummaryWriter

        args = self.args
        torch.manual_seed(args.seed)
        self.resume()
        self.start_update = self.update
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._truncate_metrics()
        if self.update == 0:
            self.snapshot()  # the starting policy
        writer = SummaryWriter(str(self.out_dir / "tensorboard"))
        bar = tqdm(
            total=self.num_updates, initial=self.update, desc=self.out_dir.name, unit="update", disable=not progress
        )
        obs, next_done, last = None, None, {}
        done_this_call = 0
        try:
            while self.update < self.num_updates and (stop_after is None or done_this_call < stop_after):
                t0 = time.perf_counter()
                if self.update % args.checkpoint_every == 0 or obs is None:
                    obs, _ = self.envs.reset(seed=self.reset_seeds())
                    next_done = torch.zeros(self.envs.num_envs)
                if args.anneal_lr:
                    self.optimizer.param_groups[0]["lr"] = args.learning_rate * (1 - self.update / self.num_updates)
                episodes: list[dict] = []
                self.agent.eval()
                buffer, obs, next_done = self.collect(obs, next_done, episodes)
                with torch.no_grad():
                    next_value = self.agent.value(obs).float().cpu()
                advantages = buffer.advantages(next_value, next_done, args.gamma, args.gae_lambda)
                self.agent.train()
                stats = self.learn(buffer, advantages, critic_only=self.update < args.critic_warmup_updates)
                seconds = time.perf_counter() - t0
                self.wall_time += seconds
                self.update += 1
                done_this_call += 1
                mean = _episode_means(episodes)
                last = {
                    "update": self.update,
                    "env_steps": self.update * self.batch,
                    "wall_time_s": self.wall_time,
                    "env_steps_per_s": self.batch / seconds,
                    "episodes": len(episodes),
                    **mean,
                    "lr": self.optimizer.param_groups[0]["lr"],
                    **stats,
                }
                self._log(last, writer)
                bar.update(1)
                bar.set_postfix(
                    ret=f"{last['return']:.2f}", success=f"{last['success_once']:.2f}", kl=f"{stats['approx_kl']:.3f}"
                )
                self.snapshot()
                if self.update % args.checkpoint_every == 0 or self.update == self.num_updates:
                    self.save_checkpoint()
        finally:
            bar.close()
            writer.close()
        if self.update == self.num_updates:
            self.publish_snapshots()
        return {
            "updates": self.update,
            "env_steps": self.update * self.batch,
            "resumed_from_update": self.start_update,
            "wall_time_s": self.wall_time,
            "last": last,
        }
