"""PPO in ManiSkill and in the world model, and closed-loop evaluation: how fast, on this machine.

- PPO: environment steps per second -- policy inference, stepping, the reward and PPO's updates all
  included -- over ``--updates`` updates after one warm-up update, each configuration in a fresh
  process, side by side in one run with the same policy: RL w. ManiSkill with ``--envs`` worker
  processes (the config's frames and policy rate), and RL w. World Model with ``--wm-envs``
  environments in one batch of the action world model on ``--wm-device`` (the config's architecture, the general
  reward with cached goal features, the ``rl.world_model.decoder``, or each of ``--wm-decoder``, and
  the reward's ``rl.world_model.reward.precision`` and ``image_size``, or each of
  ``--wm-reward-precision`` and ``--wm-reward-size``, and the action's guidance scale
  ``world_model.guidance.scale``, or each of ``--wm-guidance``: other than 1, every step runs the
  world model twice; and stage two's decoder's width ``tokenizer.decoder_channels``, or each of
  ``--wm-decoder-channels``; and the world model's own arithmetic ``world_model.rollout_precision``, or
  each of ``--wm-precision``). ``--wm-side-by-side 1 2`` also runs two such jobs at once, each with
  one of the two cores' threads, as Snakemake would with ``rl.world_model.resources.cpus: 1``:
  whether the cores serve two single-threaded jobs better than one job's two threads.
  Setting up the environments is timed apart. ``--rounds`` runs the whole set that many times,
  ManiSkill's and the world model's runs alternating, each ratio taken within its round, and gives
  each figure's median over the rounds with its range: a single run's ratio can drift by a fifth on
  a shared 2-core host. For the world model, where the time goes: PPO's own
  share (policy inference and updates), and of an environment step, the decoder's, the reward's
  and the rest's (the world model's forward pass).
- Evaluation: closed-loop episodes per minute of one evaluation job (one environment, the policy's
  deterministic actions, full-length episodes).

The policy and the world models have the config's architecture and random weights (speed does not
depend on them); ManiSkill's scene is the task's first training scene, the world model's initial
states and goals are random frames.

Usage: .venv/bin/python bench/ppo_throughput.py [--config config/tiny.yaml] [--task push] [--envs 1 2] [--wm-envs 16 64]
           [--wm-decoder exact fused-auto-by4] [--wm-reward-precision fp32 auto] [--wm-reward-size 128 64]
           [--wm-guidance 1 2] [--wm-decoder-channels 32 16] [--wm-precision fp32 auto] [--wm-device cuda]
           [--wm-side-by-side 1 2] [--updates 3] [--rounds 3] [--eval-episodes 4] [--json [PATH]]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time

from common import (
    action_world_model,
    in_fresh_process,
    in_fresh_processes,
    load_config,
    over_rounds,
    rollout_tokenizer,
    save,
)


def _policy(cfg: dict):
    """The config's MLP policy for its frames, random weights (seed 0)."""
    import torch

    from roboscape.policy.mlp import MLPPolicy, MLPPolicyConfig

    torch.manual_seed(0)
    size = cfg["trajectories"]["generator"]["image_size"]
    return MLPPolicy(MLPPolicyConfig(image_size=size, instruction_dim=384, **cfg["policy"]["arch"]))


def _setup(tier: str | None, task: str):
    import numpy as np

    from roboscape.rl.maniskill import SimEnvConfig
    from roboscape.sim.catalogue import build_catalogue, instruction

    cfg = load_config(tier)
    s = cfg["scenes"]
    catalogue = build_catalogue(s["split_seed"], [task], s["n_ind"], s["n_ood"])
    scenes = catalogue.training_scenes(task, cfg["policy"]["train_scenes"])
    instructions = {instruction(sc): np.random.default_rng(0).standard_normal(384).astype(np.float32) for sc in scenes}
    gen = cfg["trajectories"]["generator"]
    env_cfg = SimEnvConfig(
        frame_skip=cfg["world_model"]["arch"]["frame_skip"],
        episode_steps=cfg["policy"]["episode_steps"],
        image_size=gen["image_size"],
        robot_visual_detail=gen["robot_visual_detail"],
        shader=gen["shader"],
    )
    return cfg, scenes, instructions, env_cfg, _policy(cfg)


def _timed_ppo(policy, envs, ppo_cfg: dict, updates: int) -> tuple[float, int]:
    """PPO's env steps/s over ``updates`` updates after a warm-up one, and the steps timed."""
    from roboscape.rl.ppo import PPO, PPOArgs

    per_update = envs.num_envs * ppo_cfg["num_steps"]
    with tempfile.TemporaryDirectory() as out:
        overrides = {"total_steps": (updates + 1) * per_update, "checkpoint_every": updates + 1}
        ppo = PPO(policy, envs, PPOArgs(**{**ppo_cfg, **overrides, "critic_warmup_updates": 0}), out)
        ppo.train(stop_after=1, progress=False)  # warm-up
        first = ppo.wall_time
        result = ppo.train(progress=False)
    return updates * per_update / (result["wall_time_s"] - first), updates * per_update


def ppo_steps(tier: str | None, task: str, num_envs: int, updates: int) -> dict:
    """PPO's env steps/s with ``num_envs`` environment processes (run in a fresh process)."""
    from dataclasses import replace

    from roboscape.rl.maniskill import make_envs

    cfg, scenes, instructions, env_cfg, policy = _setup(tier, task)
    t0 = time.perf_counter()
    envs = make_envs(scenes, instructions, replace(env_cfg, num_envs=num_envs))
    envs.reset(seed=0)
    setup = time.perf_counter() - t0
    ppo_cfg = cfg["rl"]["maniskill"]["ppo"]
    try:
        rate, steps = _timed_ppo(policy, envs, ppo_cfg, updates)
    finally:
        envs.close()
    return {
        "env_steps_per_s": rate,
        "env_setup_s": setup,
        "env_steps": steps,
        "num_steps": ppo_cfg["num_steps"],
    }


class _Timed:
    """A callable that adds up the seconds spent in it (other attributes pass through); ``sync``
    waits for the device's queued work, so that a GPU's kernels count where they were launched."""

    def __init__(self, fn, sync=lambda: None):
        self.fn, self.sync, self.seconds = fn, sync, 0.0

    def __call__(self, *args, **kwargs):
        self.sync()
        t0 = time.perf_counter()
        out = self.fn(*args, **kwargs)
        self.sync()
        self.seconds += time.perf_counter() - t0
        return out

    def __getattr__(self, name):
        return getattr(self.fn, name)


def _step_shares(envs, steps: int) -> dict:
    """Where an environment step goes, over ``steps`` steps of zero actions: the decoder, the reward,
    and the rest (the world model's forward pass and the environment's bookkeeping)."""
    import torch

    sync = torch.cuda.synchronize if envs.rollout.device.type == "cuda" else lambda: None
    envs.rollout.decode = decode = _Timed(envs.rollout.decode, sync)
    envs.reward = reward = _Timed(envs.reward, sync)
    actions = torch.zeros(envs.num_envs, *envs.single_action_space.shape)
    t0 = time.perf_counter()
    for _ in range(steps):
        envs.step(actions)
    total = time.perf_counter() - t0
    return {
        "env_only_steps_per_s": steps * envs.num_envs / total,
        "decoder_share": decode.seconds / total,
        "reward_share": reward.seconds / total,
        "world_model_and_rest_share": 1 - (decode.seconds + reward.seconds) / total,
    }


def world_model_ppo_steps(
    tier: str | None,
    num_envs: int,
    updates: int,
    decoder: str | None,
    reward_precision: str | None,
    reward_size: int | None = None,
    device: str = "cpu",
    guidance: float | None = None,
    decoder_channels: int | None = None,
    wm_precision: str | None = None,
    threads: int = 2,
) -> dict:
    """PPO's env steps/s in the world model with ``num_envs`` environments (run in a fresh process);
    the world model, the reward and the policy on ``device``; ``decoder_channels``: stage two's
    decoder's width, ``wm_precision`` the world model's forward pass (None: the config's);
    ``threads``: torch's threads, as the pipeline sets them from ``rl.world_model.resources.cpus``."""
    import numpy as np
    import torch

    from roboscape.rl.world_model_env import GeneralReward, InitialStates, RewardConfig, WMEnvConfig, WorldModelEnv

    cfg = load_config(tier)
    if decoder_channels is not None:
        cfg["tokenizer"]["decoder_channels"] = decoder_channels
    policy = _policy(cfg).to(device)
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    tokenizer = rollout_tokenizer(cfg).to(device)
    guidance = cfg["world_model"]["guidance"]["scale"] if guidance is None else guidance
    wm = action_world_model(cfg, tokenizer, guidable=guidance != 1).to(device)
    rng = np.random.default_rng(0)
    size = tokenizer.cfg.image_size
    text = rng.standard_normal((8, 384))
    states = InitialStates(
        rng.integers(0, 256, (8, size, size, 3), dtype=np.uint8),
        rng.integers(0, 256, (8, size, size, 3), dtype=np.uint8),
        (text / np.linalg.norm(text, axis=1, keepdims=True)).astype(np.float32),
        ["push/s"] * 8,
    )
    rl = cfg["rl"]["world_model"]
    wm_env = WMEnvConfig(
        num_envs=num_envs,
        episode_steps=cfg["policy"]["episode_steps"],
        decoder=decoder or rl["decoder"],
        guidance=guidance,
        precision=wm_precision or cfg["world_model"]["rollout_precision"],
    )
    chosen = {"precision": reward_precision, "image_size": reward_size}
    reward = RewardConfig(**{**rl["reward"], **{k: v for k, v in chosen.items() if v is not None}})
    envs = WorldModelEnv(wm, tokenizer, states, wm_env, GeneralReward(reward, num_envs, device))
    envs.reset(seed=0)
    setup = time.perf_counter() - t0
    rate, steps = _timed_ppo(policy, envs, rl["ppo"], updates)
    shares = _step_shares(envs, 10)
    return {
        "env_steps_per_s": rate,
        "env_setup_s": setup,
        "env_steps": steps,
        "device": torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else "cpu",
        "decoder": wm_env.decoder,
        "reward_precision": reward.precision,
        "reward_image_size": reward.image_size,  # None: the frames' own
        "guidance": guidance,
        "decoder_channels": tokenizer.cfg.decoder_width,
        "world_model_precision": envs.rollout.precision,  # as resolved for the device
        **shares,
        "ppo_share": 1 - rate / shares["env_only_steps_per_s"],  # policy inference and updates
    }


def eval_episodes(tier: str | None, task: str, episodes: int) -> dict:
    """Closed-loop evaluation episodes per minute in one environment (run in a fresh process)."""
    from roboscape.eval.policy_eval import run_episodes, shard_episodes
    from roboscape.sim.policy_env import PolicyEnv

    cfg, scenes, instructions, env_cfg, policy = _setup(tier, task)
    env = PolicyEnv(
        scenes,
        instructions,
        env_cfg.frame_skip,
        env_cfg.episode_steps,
        image_size=env_cfg.image_size,
        robot_visual_detail=env_cfg.robot_visual_detail,
        shader=env_cfg.shader,
        terminate_on_success=False,
    )
    try:
        run_episodes(policy, env, shard_episodes(scenes, task, "ind", 1, 0, 1))  # creates the simulation
        t0 = time.perf_counter()
        rows, _ = run_episodes(policy, env, shard_episodes(scenes, task, "ind", episodes, 0, 1))
        seconds = time.perf_counter() - t0
    finally:
        env.close()
    return {
        "episodes_per_minute": 60 * len(rows) / seconds,
        "policy_steps_per_s": sum(r["steps"] for r in rows) / seconds,
        "episode_steps": env_cfg.episode_steps,
    }


def side_by_side_jobs(per_job: list[dict]) -> dict:
    """The figures of RL w. World Model jobs run side by side: the first job's, with the env steps/s
    (PPO's and the environment's alone) of all of them together, PPO's share from those, and each
    job's PPO env steps/s."""
    if len(per_job) == 1:
        return per_job[0]
    total = {k: sum(r[k] for r in per_job) for k in ("env_steps_per_s", "env_only_steps_per_s")}
    return {
        **per_job[0],
        **total,
        "ppo_share": 1 - total["env_steps_per_s"] / total["env_only_steps_per_s"],
        "jobs": len(per_job),
        "per_job_env_steps_per_s": [r["env_steps_per_s"] for r in per_job],
    }


def ppo_round(args: argparse.Namespace, index: int) -> dict:
    """One round: PPO in ManiSkill with each of ``--envs``, then in the world model with each of its
    configurations, each in a fresh process; the world model's ratio to this round's fastest ManiSkill."""
    label = f"round {index + 1}: " if args.rounds > 1 else ""
    results = {}
    for n in args.envs:
        r = in_fresh_process(ppo_steps, args.config, args.task, n, args.updates, threads=1)[0]
        results[f"ManiSkill, {n} environment processes"] = r
        print(
            f"{label}PPO in ManiSkill, {n} environment process(es): {r['env_steps_per_s']:.1f} env steps/s "
            f"(updates included; creating the environments took {r['env_setup_s']:.1f} s)",
            flush=True,
        )
    fastest = max((r["env_steps_per_s"] for r in results.values()), default=None)
    runs = itertools.product(
        args.wm_decoder or [None],
        args.wm_reward_precision or [None],
        args.wm_reward_size or [None],
        args.wm_guidance or [None],
        args.wm_decoder_channels or [None],
        args.wm_precision or [None],
        args.wm_envs,
        args.wm_side_by_side,
    )
    one_job = {}  # each setting's env steps/s as one job, for the side-by-side jobs' ratio to it
    for decoder, precision, size, guidance, channels, wm_precision, n, jobs in runs:
        threads = max(1, args.wm_cores // jobs)
        fn_args = (args.config, n, args.updates, decoder, precision, size, args.wm_device, guidance, channels)
        r = side_by_side_jobs(
            in_fresh_processes(world_model_ppo_steps, [(*fn_args, wm_precision, threads)] * jobs, threads)[0]
        )
        r["speedup_over_fastest_maniskill"] = r["env_steps_per_s"] / fastest if fastest else None
        setting = f"{r['decoder']} decoder {r['decoder_channels']} channels wide, reward in {r['reward_precision']}"
        if r["device"] != "cpu":
            setting += f", on {r['device']}"
        if r["reward_image_size"]:
            setting += f" at {r['reward_image_size']} px"
        if r["guidance"] != 1:
            setting += f", guidance {r['guidance']:g}"
        if r["world_model_precision"] != "fp32":
            setting += f", world model in {r['world_model_precision']}"
        key = (n, setting)
        if jobs == 1:
            one_job[key] = r["env_steps_per_s"]
        else:
            r["speedup_over_one_job"] = r["env_steps_per_s"] / one_job[key] if key in one_job else None
            setting += f", {jobs} jobs side by side with {threads} thread(s) each (env steps/s: all of them)"
        results[f"the world model, {n} environments, {setting}"] = r
        print(
            f"{label}PPO in the world model, {n} environments ({setting}): "
            f"{r['env_steps_per_s']:.1f} env steps/s"
            + (f" = {r['speedup_over_fastest_maniskill']:.2f}x the fastest PPO in ManiSkill" if fastest else "")
            + (f" = {r['speedup_over_one_job']:.2f}x one job's" if r.get("speedup_over_one_job") else "")
            + "; of its time, PPO "
            f"(policy and updates) {r['ppo_share']:.0%}, and of an environment step's: decoder "
            f"{r['decoder_share']:.0%}, reward {r['reward_share']:.0%}, world model and the rest "
            f"{r['world_model_and_rest_share']:.0%}",
            flush=True,
        )
    return results


def medians(rounds: list[dict]) -> dict:
    """Each configuration's figures over the rounds: every number its median, with the spread (median,
    min, max) of its env steps/s and of its ratio to ManiSkill, which each round takes within itself."""
    out = {}
    for name, first in rounds[0].items():
        per = [r[name] for r in rounds]
        f = {
            k: statistics.median(x[k] for x in per) if isinstance(v, int | float) and v is not None else v
            for k, v in first.items()
        }
        f["spread"] = over_rounds(per, ("env_steps_per_s", "speedup_over_fastest_maniskill", "speedup_over_one_job"))
        out[name] = f
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="a tier's overlay on config.yaml (e.g. config/tiny.yaml); default: config.yaml")
    ap.add_argument("--task", default="push")
    ap.add_argument(
        "--envs", type=int, nargs="*", default=[1, 2], help="ManiSkill environment processes (none: skip ManiSkill)"
    )
    ap.add_argument("--wm-envs", type=int, nargs="+", default=[16, 64], help="world-model environments in one batch")
    ap.add_argument(
        "--wm-decoder",
        nargs="+",
        help="the world model's decoders, each run in turn (default: the config's rl.world_model.decoder)",
    )
    ap.add_argument(
        "--wm-reward-precision",
        nargs="+",
        choices=["fp32", "bf16", "auto"],
        help="the general reward's perceptual trunk precisions, each run in turn (default: the config's)",
    )
    ap.add_argument(
        "--wm-reward-size",
        type=int,
        nargs="+",
        help="the sides in pixels the general reward resizes frames to, each run in turn (default: the config's)",
    )
    ap.add_argument(
        "--wm-guidance",
        type=float,
        nargs="+",
        help="the action's guidance scales, each run in turn (default: the config's world_model.guidance.scale)",
    )
    ap.add_argument(
        "--wm-decoder-channels",
        type=int,
        nargs="+",
        help="widths of stage two's decoder, each run in turn (default: the config's tokenizer.decoder_channels)",
    )
    ap.add_argument(
        "--wm-precision",
        nargs="+",
        choices=["fp32", "bf16", "auto"],
        help="the world model's forward-pass precisions, each run in turn "
        "(default: the config's world_model.rollout_precision)",
    )
    ap.add_argument(
        "--wm-side-by-side",
        type=int,
        nargs="+",
        default=[1],
        help="RL w. World Model jobs run at once, each counted in turn: N jobs in N processes side by side, "
        "each with --wm-cores // N threads (rl.world_model.resources.cpus), their env steps/s added up",
    )
    ap.add_argument("--wm-cores", type=int, default=2, help="the cores the side-by-side jobs share")
    ap.add_argument(
        "--wm-device",
        default="cpu",
        help="where the world model, its reward and the policy run (e.g. cuda; PPO's buffer stays on the CPU)",
    )
    ap.add_argument("--updates", type=int, default=3, help="timed PPO updates per number of environments")
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="times every PPO configuration runs, ManiSkill's and the world model's alternating; each figure is "
        "then the median over the rounds, each ratio taken within its round",
    )
    ap.add_argument("--eval-episodes", type=int, default=4, help="0: skip the evaluation")
    ap.add_argument(
        "--json", nargs="?", const="", help="write the figures (default: bench/results/ppo_throughput.json)"
    )
    args = ap.parse_args()
    rounds = [ppo_round(args, i) for i in range(args.rounds)]
    results = {"ppo": rounds[0] if args.rounds == 1 else medians(rounds), "evaluation": {}}
    if args.rounds > 1:
        results["rounds"] = rounds
        for name, f in results["ppo"].items():
            ratio = f" = {f['speedup_over_fastest_maniskill']:.2f}x" if f.get("speedup_over_fastest_maniskill") else ""
            print(f"median over {args.rounds} rounds, PPO in {name}: {f['env_steps_per_s']:.1f} env steps/s{ratio}")
    if args.eval_episodes:
        r = in_fresh_process(eval_episodes, args.config, args.task, args.eval_episodes, threads=1)[0]
        results["evaluation"]["1 environment"] = r
        print(
            f"evaluation: {r['episodes_per_minute']:.1f} episodes/min of {r['episode_steps']} policy steps "
            f"({r['policy_steps_per_s']:.1f} policy steps/s)",
            flush=True,
        )
    if args.json is not None:
        save("ppo_throughput", vars(args), results, threads=2, path=args.json or None)


if __name__ == "__main__":
    main()
