"""Training the embedding reward head: the frozen world model run at every step, against its hidden
states computed once (``rl.reward_models.cache_features``), side by side.

Both train the config's head (``rl.reward_models``) with AdamW on ``--windows`` windows of the
config's action world model (random weights, random tokens and actions: speed does not depend on
them), each in a fresh process with ``--threads`` threads:

- *at every step*: each step runs the world model over its batch of windows, then the head;
- *cached*: the world model runs once over every window (:class:`WindowFeatures`), then each step
  runs the head alone.

Each is timed over ``--steps`` steps after one warm-up step; the figures are seconds per step, the
cache's one-off cost, and both projected to the config's ``rl.reward_models.train.steps``.

Usage: .venv/bin/python bench/reward_training.py [--config config/tiny.yaml] [--windows 1528] [--steps 20]
           [--threads 2] [--json [PATH]]
"""

from __future__ import annotations

import argparse
import itertools
import time

from common import action_world_model, in_fresh_process, load_config, rollout_tokenizer, save


def head_steps(tier: str | None, windows: int, steps: int, cached: bool) -> dict:
    """Seconds per training step of the head (and of building the cache), in a fresh process."""
    import torch
    from torch.utils.data import DataLoader

    from roboscape.models.reward_models import RewardModel, RewardModelConfig
    from roboscape.train.reward_training import WindowFeatures, reward_objective

    cfg = load_config(tier)
    torch.manual_seed(0)
    wm = action_world_model(cfg, rollout_tokenizer(cfg)).requires_grad_(False)
    T, n = wm.cfg.window, wm.cfg.tokens_per_frame
    items = [
        {
            "tokens": torch.randint(0, wm.cfg.codebook_size, (T, n)),
            "actions": torch.randn(T, wm.cfg.action_dim) * 0.1,
            "rewards": torch.rand(T - 1),
        }
        for _ in range(windows)
    ]
    rm = cfg["rl"]["reward_models"]
    batch_size = rm["train"]["batch_size"]
    t0 = time.perf_counter()
    dataset = WindowFeatures(items, wm, batch_size, torch.device("cpu")) if cached else items
    cache_s = time.perf_counter() - t0
    head = RewardModel(RewardModelConfig(kind="embedding", feature_dim=wm.cfg.dim, hidden_dim=rm["hidden_dim"]))
    optimizer = torch.optim.AdamW(head.parameters(), lr=rm["train"]["lr"])
    objective = reward_objective(wm)

    def batches():  # epoch after epoch, as the trainer draws them
        while True:
            yield from DataLoader(dataset, batch_size=batch_size, shuffle=True)

    t0 = None
    for step, batch in enumerate(itertools.islice(batches(), steps + 1)):  # the first is a warm-up
        if step == 1:
            t0 = time.perf_counter()
        loss = objective(head, batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return {
        "seconds_per_step": (time.perf_counter() - t0) / steps,
        "cache_s": cache_s if cached else 0.0,
        "batch_size": batch_size,
        "config_steps": rm["train"]["steps"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="a tier's overlay on config.yaml (e.g. config/tiny.yaml); default: config.yaml")
    ap.add_argument(
        "--windows", type=int, default=1528, help="training windows (the default tier's Pick and Place has 1528)"
    )
    ap.add_argument("--steps", type=int, default=20, help="timed training steps of each")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--json", nargs="?", const="", help="write the figures (default: bench/results/reward_training.json)"
    )
    args = ap.parse_args()
    results = {}
    for name, cached in (("at every step", False), ("cached", True)):
        r = in_fresh_process(head_steps, args.config, args.windows, args.steps, cached, threads=args.threads)[0]
        r["projected_s"] = r["cache_s"] + r["config_steps"] * r["seconds_per_step"]
        results[name] = r
        print(
            f"the world model's features {name}: {r['seconds_per_step']:.3f} s/step"
            + (f" after {r['cache_s']:.1f} s computing them for {args.windows} windows" if cached else "")
            + f"; {r['config_steps']} steps: {r['projected_s'] / 60:.1f} min",
            flush=True,
        )
    speedup = results["at every step"]["projected_s"] / results["cached"]["projected_s"]
    results["speedup"] = speedup
    print(f"caching the features: {speedup:.1f}x faster over the config's {results['cached']['config_steps']} steps")
    if args.json is not None:
        save("reward_training", vars(args), results, threads=args.threads, path=args.json or None)


if __name__ == "__main__":
    main()
