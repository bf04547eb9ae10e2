"""Tokenizing a clip shard (rule ``tokenize``): each frame of an episode encoded once, against every
clip's frames encoded, side by side in one process.

Clips overlap (the default tier cuts a 28-frame clip every 14 frames of an episode), so encoding
clip by clip encodes most frames twice; ``roboscape.data.tokens.tokenize_clip_shard`` encodes each
frame once and copies its codes into every clip that holds it. Each round tokenizes the same shard
both ways in turn; the figures are the seconds per shard (median, min-max over rounds), the frames
encoded, the speedup, and whether the two token shards are identical.

With ``--tokenizer -`` the encoder has the architecture of ``--config``'s tokenizer and random
weights: its speed, not its codes, is then what the figures tell.

Usage: .venv/bin/python bench/tokenize_throughput.py [--clips results/default/clips/push/shard_000.h5]
           [--tokenizer results/default/tokenizer/model | - [--config config/tiny.yaml]] [--rounds 2] [--threads 2]
           [--json [PATH]]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import load_config, save, spread, tokenizer_or_random

MODES = {"clip by clip": False, "each frame once": True}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default="results/default/clips/push/shard_000.h5", help="a clip shard")
    ap.add_argument("--tokenizer", default="results/default/tokenizer/model", help="a trained tokenizer, or -")
    ap.add_argument("--config", help="the architecture with --tokenizer -: a tier's overlay on config.yaml")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--json", nargs="?", const="", help="write the figures (default: bench/results/tokenize_throughput.json)"
    )
    args = ap.parse_args()

    import h5py
    import numpy as np
    import torch

    from roboscape.data.tokens import tokenize_clip_shard

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = tokenizer_or_random(args.tokenizer, args.config)
    view = load_config(args.config)["tokenizer"]["run"]["view"]
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    summaries: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {mode: Path(tmp) / f"{i}.h5" for i, mode in enumerate(MODES)}
        for _ in range(args.rounds):
            for mode, dedupe in MODES.items():
                t0 = time.perf_counter()
                summaries[mode] = tokenize_clip_shard(tokenizer, args.clips, outputs[mode], view=view, dedupe=dedupe)
                seconds[mode].append(time.perf_counter() - t0)
        with h5py.File(outputs["clip by clip"]) as a, h5py.File(outputs["each frame once"]) as b:
            identical = bool(np.array_equal(a["tokens"][()], b["tokens"][()]))
    results = {
        "clips": summaries["each frame once"]["clips"],
        "clip_frames": summaries["each frame once"]["frames"],
        **{
            mode: {"seconds": spread(seconds[mode]), "frames_encoded": summaries[mode]["frames_encoded"]}
            for mode in MODES
        },
        "speedup": spread([a / b for a, b in zip(seconds["clip by clip"], seconds["each frame once"], strict=True)]),
        "identical_tokens": identical,
    }
    for mode in MODES:
        f = results[mode]
        print(f"{mode}: {f['seconds']['median']:.1f} s per shard, {f['frames_encoded']} frames encoded")
    print(f"{results['speedup']['median']:.2f}x faster; identical token shards: {identical}")
    if args.json is not None:
        save("tokenize_throughput", vars(args), results, args.threads, args.json or None)


if __name__ == "__main__":
    main()
