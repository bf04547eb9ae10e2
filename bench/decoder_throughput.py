"""Decoding speed of the rollouts' decoder options, side by side in one process
(``roboscape.models.inference_decoder``): upsampling fused into transposed convolutions or not,
eager or compiled by TorchInductor (frozen weights), fp32 or bf16.

Each round times one decode of the same N token maps (with their context) by every option in
turn; the figures are medians over rounds, speedups are against the exact decoder (eager fp32),
and every option's frames are compared with the exact ones (PSNR).

With ``--tokenizer -`` the decoder has the architecture of ``--config``'s rollout tokenizer and
random weights: its speed, not its frames, is then what the figures tell.

Usage: .venv/bin/python bench/decoder_throughput.py
           [--tokenizer results/default/tokenizer/finetuned/model | - [--config config/tiny.yaml]]
           [--batch 1 16] [--rounds 8] [--threads 2] [--options fp32 bf16 compiled-bf16 fused-fp32 ...] [--json [PATH]]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
from common import save, tokenizer_or_random

from roboscape.models.inference_decoder import DecoderOptions, InferenceDecoder

DEFAULT_OPTIONS = [
    "fp32",
    "bf16",
    "compiled-fp32",
    "compiled-bf16",
    "fused-fp32",
    "fused-bf16",
    "fused-compiled-fp32",
    "fused-compiled-bf16",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--tokenizer",
        default="results/default/tokenizer/finetuned/model",
        help="a trained tokenizer, or - (random weights)",
    )
    ap.add_argument(
        "--config", help="the architecture with --tokenizer -: a tier's overlay on config.yaml (default: config.yaml)"
    )
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--options",
        nargs="+",
        default=DEFAULT_OPTIONS,
        help="[fused-][compiled-](fp32|bf16|auto); fp32 is always timed",
    )
    ap.add_argument(
        "--json", nargs="?", const="", help="write the figures (default: bench/results/decoder_throughput.json)"
    )
    args = ap.parse_args()
    options = [DecoderOptions.from_name(name) for name in dict.fromkeys(["fp32", *args.options])]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = tokenizer_or_random(args.tokenizer, args.config)
    results = {}
    for n in args.batch:
        # fused and compiled decoders hold their own copies of the weights: one tokenizer serves all
        decoders = {o.name: InferenceDecoder(tokenizer, o) for o in options}
        s = tokenizer.cfg.image_size
        with torch.no_grad():
            frames = torch.rand(n, 3, s, s) * 2 - 1
            tokens = tokenizer.encode(frames)
            context = tokenizer.decoder_context(frames, tokens)
            exact = tokenizer.decode_tokens(tokens, context)
            psnr = {}
            for name, decode in decoders.items():  # compiles, and warms up
                mse = (decode(tokens, context) - exact).pow(2).mean().item()
                psnr[name] = 10 * math.log10(4 / mse) if mse > 0 else math.inf
                decode(tokens, context)
            times: dict[str, list[float]] = {name: [] for name in decoders}
            for _ in range(args.rounds):
                for name, decode in decoders.items():
                    t0 = time.perf_counter()
                    decode(tokens, context)
                    times[name].append(time.perf_counter() - t0)
        base = statistics.median(times["fp32"])
        for name, ts in times.items():
            t = statistics.median(ts)
            results[f"{n} frames, {name}"] = {
                "ms_per_decode": t * 1000,
                "frames_per_s": n / t,
                "speedup_over_exact": base / t,
                "psnr_vs_exact": psnr[name],
            }
            print(
                f"{n:3d} frames, {name:19s}: {t * 1000:7.1f} ms per decode, {n / t:7.1f} frames/s, "
                f"{base / t:.2f}x exact, frames {psnr[name]:.0f} dB from exact",
                flush=True,
            )
    if args.json is not None:
        save("decoder_throughput", vars(args), results, threads=args.threads, path=args.json or None)


if __name__ == "__main__":
    main()
