"""OpenVLA-7B as the policy: memory, action-sampling throughput and one LoRA-PPO update, on the GPU
when there is one, else on the CPU.

The model has OpenVLA-7B's architecture (``--size full``; ``tiny``: the reduced model the tests use, for
a quick check on a CPU) with random weights: memory and speed do not depend on them. Frames are
random 128 px images, as the environments give them; the instruction is one of two.

- **Memory:** the weights (parameters and buffers) and, on a GPU, the peak allocated while sampling
  and while updating.
- **Action sampling:** ``act`` for a batch of ``--envs`` environments (7 tokens decoded with the
  key-value cache, then re-scored by the teacher-forced pass PPO's ratio needs): batches per second
  and actions per second.
- **A LoRA-PPO update:** :class:`roboscape.rl.ppo.PPO` for one update of ``--envs`` x
  ``--num-steps`` transitions in an environment that costs nothing (random frames, reward 0), so
  the time is the policy's: sampling the rollout, then ``--epochs`` passes of ``--minibatches``
  minibatches.

Usage: .venv/bin/python bench/openvla.py [--size full|tiny] [--envs 8 32] [--num-steps 8] [--minibatches 4]
           [--epochs 1] [--repeats 3] [--json [PATH]]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from common import save

INSTRUCTIONS = ["pick up the peach and place it on the plate", "push the peach forward by 10 cm"]


class NullEnv:
    """Random 128 px frames, reward 0, episodes that never end: the vector-env contract PPO uses."""

    def __init__(self, num_envs: int, embeddings):
        import gymnasium as gym
        import numpy as np
        import torch

        self.num_envs, self.embeddings = num_envs, embeddings
        frame = gym.spaces.Box(0, 255, (128, 128, 3), np.uint8)
        text = gym.spaces.Box(-1.0, 1.0, (embeddings.shape[1],), np.float32)
        self.single_observation_space = gym.spaces.Dict({"rgb": frame, "prev_rgb": frame, "instruction": text})
        self.generator = torch.Generator().manual_seed(0)

    def _obs(self):
        import torch

        frames = torch.randint(0, 256, (self.num_envs, 128, 128, 3), dtype=torch.uint8, generator=self.generator)
        which = torch.arange(self.num_envs) % len(self.embeddings)
        return {"rgb": frames, "prev_rgb": frames, "instruction": self.embeddings[which]}

    def reset(self, seed=None):
        return self._obs(), {}

    def step(self, actions):
        import torch

        n = self.num_envs
        return self._obs(), torch.zeros(n), torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool), {}


def build(size: str):
    import torch

    from roboscape.policy.openvla import OpenVLAPolicy, OpenVLAPolicyConfig
    from roboscape.policy.openvla.model import REDUCED

    cuda = torch.cuda.is_available()
    cfg = OpenVLAPolicyConfig(
        vla={} if size == "full" else REDUCED,
        instructions=INSTRUCTIONS,
        instruction_dim=384,
        dtype="bfloat16" if cuda else "float32",
    )
    torch.manual_seed(0)
    policy = OpenVLAPolicy(cfg, random_full_size=True).to("cuda" if cuda else "cpu").eval()
    embeddings = torch.nn.functional.normalize(torch.randn(len(INSTRUCTIONS), 384), dim=1)
    policy.set_instructions(embeddings)
    return policy, embeddings


def _sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _peak_gb() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def measure(size: str, envs: int, num_steps: int, minibatches: int, epochs: int, repeats: int) -> dict:
    import torch

    from roboscape.rl.ppo import PPO, PPOArgs

    t0 = time.perf_counter()
    policy, embeddings = build(size)
    built = time.perf_counter() - t0
    tensors = list(policy.parameters()) + list(policy.buffers())
    weights_gb = sum(t.numel() * t.element_size() for t in tensors) / 2**30
    env = NullEnv(envs, embeddings)
    obs, _ = env.reset()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        policy.act(obs, generator=generator)  # warm-up
        _sync()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(repeats):
            policy.act(obs, generator=generator)
        _sync()
    act_s = (time.perf_counter() - t0) / repeats
    sampling_peak = _peak_gb()
    args = PPOArgs(
        total_steps=2 * envs * num_steps,
        num_steps=num_steps,
        update_epochs=epochs,
        num_minibatches=minibatches,
        learning_rate=3e-5,
        checkpoint_every=10,
        target_kl=None,
    )
    with tempfile.TemporaryDirectory() as out:
        ppo = PPO(policy, env, args, out)
        ppo.train(stop_after=1, progress=False)  # warm-up update
        first = ppo.wall_time
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        ppo.train(stop_after=1, progress=False)
        update_s = ppo.wall_time - first
    return {
        "size": size,
        "device": str(next(policy.parameters()).device),
        "dtype": policy.cfg.dtype,
        "parameters": sum(p.numel() for p in policy.parameters()),
        "trainable_parameters": sum(p.numel() for p in policy.parameters() if p.requires_grad),
        "build_s": built,
        "weights_gb": weights_gb,
        "envs": envs,
        "act_batch_s": act_s,
        "actions_per_s": envs / act_s,
        "sampling_peak_gb": sampling_peak,
        "ppo_update_transitions": envs * num_steps,
        "ppo_update_s": update_s,
        "ppo_update_peak_gb": _peak_gb(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["full", "tiny"], default="full")
    ap.add_argument("--envs", type=int, nargs="+", default=[8, 32], help="environments in a batch")
    ap.add_argument("--num-steps", type=int, default=8, help="rollout steps per environment in the PPO update")
    ap.add_argument("--minibatches", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="timed act() calls")
    ap.add_argument("--json", nargs="?", const="", help="write the figures (default: bench/results/openvla.json)")
    args = ap.parse_args()
    results = {}
    for n in args.envs:
        r = measure(args.size, n, args.num_steps, args.minibatches, args.epochs, args.repeats)
        results[f"{args.size}, {n} environments"] = r
        peak = "" if r["sampling_peak_gb"] is None else f", peak {r['sampling_peak_gb']:.1f} GB"
        print(
            f"OpenVLA ({args.size}, {r['parameters'] / 1e9:.2f} B parameters, {r['dtype']} on {r['device']}): "
            f"weights {r['weights_gb']:.2f} GB; act for {n} environments {r['act_batch_s'] * 1000:.0f} ms "
            f"({r['actions_per_s']:.1f} actions/s{peak}); one LoRA-PPO update of {r['ppo_update_transitions']} "
            f"transitions {r['ppo_update_s']:.1f} s",
            flush=True,
        )
    if args.json is not None:
        save("openvla", vars(args), results, path=args.json or None)


if __name__ == "__main__":
    main()
