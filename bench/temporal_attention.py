"""A rollout step of the action world model: temporal attention by torch's kernel against the one-query form.

One step of the config's action world model (random weights) for ``--envs`` environments with a
full window of frames in its KV cache, side by side in one process with ``--threads`` threads,
rounds interleaved: with each block's temporal attention (every spatial position's new frame over
the frames of its window) computed by torch's scaled dot-product attention, and by
:func:`roboscape.models.world_model.one_query_attention`, the elementwise form. In fp32, and in bf16
(autocast, as ``world_model.rollout_precision: bf16``) where the CPU computes in it; the model takes
the one-query form in the dtypes of ``roboscape.models.world_model.ONE_QUERY_DTYPES``. The figures:
milliseconds per step, the speedup, and the largest difference between the two forms' logits.

Usage: .venv/bin/python bench/temporal_attention.py [--config config/tiny.yaml] [--envs 16] [--rounds 10]
           [--threads 2] [--json [PATH]]
"""

from __future__ import annotations

import argparse
import time

from common import action_world_model, load_config, rollout_tokenizer, save, side_by_side

FORMS = ("scaled_dot_product_attention", "one query")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="a tier's overlay on config.yaml (e.g. config/tiny.yaml); default: config.yaml")
    ap.add_argument("--envs", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--json", nargs="?", const="", help="write the figures (default: bench/results/temporal_attention.json)"
    )
    args = ap.parse_args()

    import torch

    import roboscape.models.world_model as world_model
    from roboscape.models.precision import has_fast_bf16

    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    wm = action_world_model(cfg, rollout_tokenizer(cfg)).eval()
    dtypes = world_model.ONE_QUERY_DTYPES
    one_query_dtypes = {"scaled_dot_product_attention": (), "one query": (torch.float32, torch.bfloat16)}
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(
        0, wm.cfg.codebook_size, (wm.cfg.window + 1, args.envs, wm.cfg.tokens_per_frame), generator=g
    )
    actions = torch.rand(wm.cfg.window + 1, args.envs, wm.cfg.action_dim, generator=g) * 2 - 1

    def step(form: str, cache, t: int):
        world_model.ONE_QUERY_DTYPES = one_query_dtypes[form]  # which form the model's attention takes
        try:
            return wm.step(frames[t], actions[t], cache)
        finally:
            world_model.ONE_QUERY_DTYPES = dtypes

    precisions = ("fp32", "bf16") if has_fast_bf16("cpu") else ("fp32",)
    results = {}
    with torch.no_grad():
        for precision in precisions:
            with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
                caches = {}
                for form in FORMS:  # fill the window
                    cache = None
                    for t in range(wm.cfg.window):
                        _, cache = step(form, cache, t)
                    caches[form] = cache
                ms: dict[str, list[float]] = {form: [] for form in FORMS}
                logits = {}
                for _ in range(args.rounds):
                    for form in FORMS:
                        t0 = time.perf_counter()
                        out, caches[form] = step(form, caches[form], wm.cfg.window)
                        ms[form].append((time.perf_counter() - t0) * 1000)
                        logits[form] = out.logits.float()
            a, b = FORMS
            results[precision] = {
                **side_by_side(ms, a, b),
                "max_logit_difference": float((logits[a] - logits[b]).abs().max()),
            }
            r = results[precision]
            print(
                f"{precision}: a world-model step of {args.envs} environments {r[a]['median']:.1f} ms with {a}, "
                f"{r[b]['median']:.1f} ms with the {b} form, {r['speedup']['median']:.2f}x; logits differ by at most "
                f"{r['max_logit_difference']:.1e}"
            )
    if args.json is not None:
        save("temporal_attention", vars(args), results, args.threads, args.json or None)


if __name__ == "__main__":
    main()
