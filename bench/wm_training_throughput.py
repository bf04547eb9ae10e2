"""World-model training throughput: tokens per second, and model FLOPs utilisation on a GPU.

One optimizer step = forward + backward + AdamW on a batch of ``batch_size`` windows of ``window``
frames (the config's world model, synthetic tokens and actions: speed does not depend on the
data). FLOPs per step are counted by ``torch.utils.flop_counter`` (matmuls and attention, forward
and backward); MFU = counted FLOPs/s over the GPU's dense bf16 peak (``--peak-tflops``; the
default is the H100/H200 SXM figure, 989 TFLOP/s). On a CPU only tokens/s are reported.

Usage: .venv/bin/python bench/wm_training_throughput.py [--config config/paper.yaml] [--batch-size 4] [--steps 5]
           [--device cuda] [--peak-tflops 989] [--json [PATH]]
"""

from __future__ import annotations

import argparse
import time

import torch
from common import load_config, rollout_tokenizer, save
from torch.utils.flop_counter import FlopCounterMode

from roboscape.models.world_model import WorldModel, WorldModelConfig, world_model_loss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="a tier's overlay on config.yaml (e.g. config/paper.yaml); default: config.yaml")
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument(
        "--json", nargs="?", const="", help="write the figures (default: bench/results/wm_training_throughput.json)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = load_config(args.config)
    tok_cfg = rollout_tokenizer(cfg).cfg
    codebook = tok_cfg.codebook_size
    wm_cfg = WorldModelConfig(
        **cfg["world_model"]["arch"], codebook_size=codebook, tokens_hw=tok_cfg.tokens_hw, control="action"
    )
    batch = args.batch_size or cfg["world_model"]["action"]["train"]["batch_size"]
    device = torch.device(args.device)
    model = WorldModel(wm_cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    T, N = wm_cfg.window, wm_cfg.tokens_per_frame
    tokens = torch.randint(0, codebook, (batch, T, N), device=device)
    actions = torch.randn(batch, T, 7, device=device) * 0.1
    done = (torch.rand(batch, T, device=device) > 0.9).float()
    dtype = torch.bfloat16 if device.type == "cuda" else None

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = world_model_loss(model(tokens, actions), tokens, done, wm_cfg.token_target)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    with FlopCounterMode(display=False) as counter:
        step()
    flops_per_step = counter.get_total_flops()
    for _ in range(2):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    seconds = (time.perf_counter() - t0) / args.steps
    tokens_per_step = batch * T * N
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({args.threads} threads)",
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch_size": batch,
        "window": T,
        "tokens_per_frame": N,
        "seconds_per_step": seconds,
        "tokens_per_second": tokens_per_step / seconds,
        "flops_per_step": flops_per_step,
        "achieved_tflops": flops_per_step / seconds / 1e12,
        "mfu": flops_per_step / seconds / (args.peak_tflops * 1e12) if device.type == "cuda" else None,
    }
    print(
        f"{result['device']}: {result['parameters'] / 1e6:.1f} M params, batch {batch} x {T} frames x {N} tokens: "
        f"{seconds:.3f} s/step, {result['tokens_per_second']:,.0f} tokens/s, {result['achieved_tflops']:.3f} TFLOP/s"
        + (
            f", MFU {100 * result['mfu']:.1f}% of {args.peak_tflops:.0f} TFLOP/s"
            if result["mfu"] is not None
            else " (MFU is measured on a GPU only)"
        )
    )
    if args.json is not None:
        save("wm_training_throughput", vars(args), result, threads=args.threads, path=args.json or None)


if __name__ == "__main__":
    main()
