"""The general reward's step: shift-tolerant AlexNet's trunk as ``stlpips-pytorch`` ships it against the fast trunk.

One step of the general reward (``GeneralReward``: the trunk on ``--frames`` new frames of
``--size`` pixels, channels-last, then the distance to cached goal features), side by side in one
process with ``--threads`` threads, rounds interleaved: with the trunk as shipped, whose first layer
is a stride-1 11x11 convolution at full resolution followed by an anti-aliasing blur and a stride,
and with :func:`roboscape.models.perceptual.fast_trunk`, which computes that layer as one strided
convolution. In fp32, and in bf16 where the CPU computes in it. The figures: milliseconds per step,
the speedup, and the largest difference between the two trunks' rewards.

Usage: .venv/bin/python bench/reward_trunk.py [--frames 16] [--size 128] [--rounds 10] [--threads 2] [--json [PATH]]
"""

from __future__ import annotations

import argparse
import time

from common import save, side_by_side

TRUNKS = ("as shipped", "fast")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", nargs="?", const="", help="write the figures (default: bench/results/reward_trunk.json)")
    args = ap.parse_args()

    import torch

    from roboscape.models.precision import has_fast_bf16
    from roboscape.rl.world_model_env import GeneralReward, RewardConfig

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    goals, frames = (torch.rand(args.frames, 3, args.size, args.size) * 2 - 1 for _ in range(2))
    done = torch.zeros(args.frames)
    precisions = ("fp32", "bf16") if has_fast_bf16("cpu") else ("fp32",)
    results = {}
    for precision in precisions:
        rewards = {}
        for trunk in TRUNKS:
            reward = GeneralReward(RewardConfig(alpha=0.0, beta=1.0, precision=precision), args.frames)
            if trunk == "as shipped":
                reward.trunk = reward.perceptual.model.net.to(memory_format=torch.channels_last)
            reward.reset(torch.arange(args.frames), goals)
            reward(frames, done, None)  # warm-up: oneDNN picks its kernels, the fast trunk its plan
            rewards[trunk] = reward
        ms: dict[str, list[float]] = {trunk: [] for trunk in TRUNKS}
        for _ in range(args.rounds):
            for trunk in TRUNKS:
                t0 = time.perf_counter()
                rewards[trunk](frames, done, None)
                ms[trunk].append((time.perf_counter() - t0) * 1000)
        values = {trunk: rewards[trunk](frames, done, None) for trunk in TRUNKS}
        results[precision] = {
            **side_by_side(ms, "as shipped", "fast"),
            "max_reward_difference": float((values["fast"] - values["as shipped"]).abs().max()),
        }
        r = results[precision]
        print(
            f"{precision}: {r['as shipped']['median']:.1f} ms as shipped, {r['fast']['median']:.1f} ms fast, "
            f"{r['speedup']['median']:.2f}x; rewards differ by at most {r['max_reward_difference']:.1e}"
        )
    if args.json is not None:
        save("reward_trunk", vars(args), results, args.threads, args.json or None)


if __name__ == "__main__":
    main()
