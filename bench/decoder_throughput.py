"""Decoding speed of the rollouts' decoder options, side by side in one process: eager or compiled
by TorchInductor (frozen weights), fp32 or bf16 (``roboscape.models.inference_decoder``).

Each round times one decode of the same N token maps (with their context) by every option in
turn; the figures are medians over rounds, and speedups are against eager fp32.

Usage: .venv/bin/python bench/decoder_throughput.py [--tokenizer results/default/tokenizer/finetuned/model]
           [--batch 1 16] [--rounds 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from roboscape.models.inference_decoder import InferenceDecoder
from roboscape.train.checkpoint import load_pretrained

OPTIONS = {"eager-fp32": ("fp32", False), "eager-bf16": ("bf16", False), "compiled-fp32": ("fp32", True),
           "compiled-bf16": ("bf16", True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", default="results/default/tokenizer/finetuned/model")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for n in args.batch:
        # one tokenizer per option: a compiled decoder freezes its module's weights into its graph
        decoders = {name: InferenceDecoder(load_pretrained(args.tokenizer), precision, compile)
                    for name, (precision, compile) in OPTIONS.items()}
        tokenizer = decoders["eager-fp32"].tokenizer
        s = tokenizer.cfg.image_size
        with torch.no_grad():
            frames = torch.rand(n, 3, s, s) * 2 - 1
            tokens = tokenizer.encode(frames)
            context = tokenizer.decoder_context(frames, tokens)
            for decode in decoders.values():  # compiles, and warms up
                decode(tokens, context)
                decode(tokens, context)
            times: dict[str, list[float]] = {name: [] for name in decoders}
            for _ in range(args.rounds):
                for name, decode in decoders.items():
                    t0 = time.perf_counter()
                    decode(tokens, context)
                    times[name].append(time.perf_counter() - t0)
        base = statistics.median(times["eager-fp32"])
        for name, ts in times.items():
            t = statistics.median(ts)
            print(f"{n:3d} frames, {name:13s}: {t * 1000:7.1f} ms per decode, {n / t:7.1f} frames/s, {base / t:.2f}x eager fp32",
                  flush=True)


if __name__ == "__main__":
    main()
