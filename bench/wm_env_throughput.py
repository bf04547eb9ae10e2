"""Environment steps per second: the world model as an environment against ManiSkill's CPU env.

Measured side by side in one run, each in a fresh process with the same thread count:

- ManiSkill: ``RoboScape-PickPlace-v1`` (a ManiSkill3 env) on the CPU simulator with CPU (llvmpipe)
  rendering, ``obs_mode="rgb"`` at the same image size (its two cameras), random actions in
  pd_ee_delta_pose; with ManiSkill's own Panda meshes and with our decimated ones. One env step
  is one decision at the world model's rate: with ``world_model.frame_skip`` k it simulates k
  control steps (the first k - 1 without observation, so the cameras render once), as the RL
  environment will when it replays a world-model action in the simulator.
- World model: the rollout engine with N environments in one batch, one forward pass per frame
  with the KV cache, decoding to RGB included. Architecture from a config file (weights random
  unless trained model directories are given: speed does not depend on them). Each batch size runs
  twice: with the decoder as trained (eager, fp32) and with the inference decoder of
  ``--fast-decoder`` (default ``fused-auto-by4``: upsampling fused into transposed convolutions,
  bf16 where the CPU computes in it and fp32 elsewhere, 4 frames per decoder call; see
  ``roboscape.models.inference_decoder``), whose frames are compared with the exact ones (PSNR
  over the last step's frames; the tokens are the same).

Env steps/s = environments x steps / seconds, over steps taken after the warm-up (the KV
cache is full, i.e. steady state). The decoder's share of a step: the same number of decodes of
the last step's tokens, timed alone, over the steps' time.

The host's speed drifts by up to ~20% over minutes, so ``--rounds R`` repeats the whole comparison
and prints the median, min and max of every figure, each speedup taken against the ManiSkill
runs of its own round.

Usage: .venv/bin/python bench/wm_env_throughput.py [--config config/tiny.yaml] [--envs 1 16 64] [--threads 2]
           [--rounds 1] [--fast-decoder [fused-][compiled-](fp32|bf16|auto)[-byK]|none]
           [--world-model results/default/world_model/action/model
            --tokenizer results/default/tokenizer/finetuned/model]
           [--json [PATH]]
"""

from __future__ import annotations

import argparse
import math
import time

from common import action_world_model, in_fresh_process, load_config, over_rounds, rollout_tokenizer, save

from roboscape.models.inference_decoder import DecoderOptions


def maniskill_steps(size: int, detail: str, steps: int, frame_skip: int) -> dict:
    """ManiSkill's env steps/s (run in a fresh process): one decision is ``frame_skip`` control
    steps, the cameras render once."""
    import numpy as np

    from roboscape.sim.catalogue import build_catalogue
    from roboscape.sim.env import make_env

    cat = build_catalogue(0, ["pick_place"], 1, 0)
    env = make_env(
        cat.scene(cat.selected["pick_place"][0]),
        image_size=size,
        obs_mode="rgb",
        robot_visual_detail=None if detail == "full" else float(detail),
    )
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def decision(action):
        for _ in range(frame_skip - 1):
            env.unwrapped._step_action(action)  # physics and controller only: no observation rendered
        return env.step(action)

    for _ in range(5):
        decision(rng.uniform(-1, 1, 7).astype(np.float32))
    t0 = time.perf_counter()
    for _ in range(steps):
        obs, *_ = decision(rng.uniform(-1, 1, 7).astype(np.float32))
    dt = time.perf_counter() - t0
    env.close()
    return {"steps_per_s": steps / dt, "cameras": {k: tuple(v["rgb"].shape) for k, v in obs["sensor_data"].items()}}


def world_model_steps(
    tier: str | None, n: int, steps: int, wm_dir: str, tok_dir: str, threads: int, decoder_name: str
) -> dict:
    """The world model's env steps/s with ``n`` environments (run in a fresh process), decoding
    with ``decoder_name``, and how far its frames are from the exact decoder's."""
    import torch

    from roboscape.models.inference_decoder import DecoderOptions
    from roboscape.models.rollout import Rollout
    from roboscape.models.tokenizer import Tokenizer
    from roboscape.models.world_model import WorldModel

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if tok_dir != "-":
        tokenizer, wm = Tokenizer.from_pretrained(tok_dir), WorldModel.from_pretrained(wm_dir)
    else:
        cfg = load_config(tier)
        tokenizer = rollout_tokenizer(cfg)
        wm = action_world_model(cfg, tokenizer)
    s = tokenizer.cfg.image_size
    rollout = Rollout(wm, tokenizer, decoder=DecoderOptions.from_name(decoder_name))
    first = torch.rand(n, 3, s, s) * 2 - 1
    context = tokenizer.decoder_context(first, rollout.reset(first))
    for _ in range(wm.cfg.window + 1):  # the KV cache fills; the first decode compiles a compiled decoder
        rollout.step(torch.zeros(n, 7))
    t0 = time.perf_counter()
    for _ in range(steps):
        out = rollout.step(torch.rand(n, 7) * 0.2 - 0.1)
    dt = time.perf_counter() - t0
    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(steps):
            rollout.decode(out.tokens, context)
        decode_dt = time.perf_counter() - t0
        mse = (out.frames - tokenizer.decode_tokens(out.tokens, context)).pow(2).mean().item()
    return {
        "env_steps_per_s": n * steps / dt,
        "decoder_share": decode_dt / dt,
        "psnr_vs_exact": 10 * math.log10(4 / mse) if mse > 0 else math.inf,
        "decoder": rollout.decode.options.name,
        "frame": tuple(out.frames.shape[1:]),
        "tokens_per_frame": wm.cfg.tokens_per_frame,
        "parameters": sum(p.numel() for p in wm.parameters()),
    }


def run(fn, *args, threads: int) -> dict:
    return in_fresh_process(fn, *args, threads=threads)[0]


def one_round(args: argparse.Namespace, size: int, frame_skip: int, decoders: list[str]) -> dict:
    """ManiSkill's envs, then every batch size and decoder, with speedups against this round's ManiSkill."""
    results: dict = {"maniskill": {}, "world_model": {}}
    for detail in ("full", "0.05"):
        r = run(maniskill_steps, size, detail, args.sim_steps, frame_skip, threads=args.threads)
        results["maniskill"][f"robot meshes {detail}"] = r
        print(
            f"ManiSkill CPU env, {size} px, robot meshes {detail}, {frame_skip} control step(s) per env step: "
            f"{r['steps_per_s']:.1f} steps/s  cameras {r['cameras']}",
            flush=True,
        )
    as_shipped = results["maniskill"]["robot meshes full"]["steps_per_s"]
    fastest = max(r["steps_per_s"] for r in results["maniskill"].values())
    for n in args.envs:
        for decoder in decoders:
            r = run(
                world_model_steps,
                args.config,
                n,
                args.steps,
                args.world_model,
                args.tokenizer,
                args.threads,
                decoder,
                threads=args.threads,
            )
            r["speedup_over_maniskill_as_shipped"] = r["env_steps_per_s"] / as_shipped
            r["speedup_over_fastest_maniskill"] = r["env_steps_per_s"] / fastest
            results["world_model"][f"{n} envs, {decoder} decoder"] = r
            fidelity = "" if decoder == "fp32" else f", frames {r['psnr_vs_exact']:.1f} dB PSNR against exact"
            print(
                f"world model, {n:3d} envs, {r['decoder']:19s} decoder: {r['env_steps_per_s']:8.1f} env steps/s  = "
                f"{r['speedup_over_maniskill_as_shipped']:.2f}x ManiSkill with its meshes, "
                f"{r['speedup_over_fastest_maniskill']:.2f}x the fastest ManiSkill env; "
                f"the decoder {r['decoder_share']:.0%} of a step{fidelity} "
                f"({r['tokens_per_frame']} tokens/frame, {r['parameters'] / 1e6:.1f} M params)",
                flush=True,
            )
    return results


def summarise(rounds: list[dict]) -> dict:
    """Per ManiSkill env and WM configuration: the median, min and max over rounds of its steps/s
    and (WM) of its speedup over the same round's ManiSkill as shipped."""
    summary: dict = {}
    for group, keys in (
        ("maniskill", ("steps_per_s",)),
        ("world_model", ("env_steps_per_s", "speedup_over_maniskill_as_shipped")),
    ):
        for name in rounds[0][group]:
            summary.setdefault(name, {}).update(over_rounds([r[group][name] for r in rounds], keys))
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="a tier's overlay on config.yaml (e.g. config/tiny.yaml); default: config.yaml")
    ap.add_argument("--envs", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--steps", type=int, default=20, help="timed world-model steps per batch size")
    ap.add_argument("--sim-steps", type=int, default=100, help="timed ManiSkill steps")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--fast-decoder",
        default="fused-auto-by4",
        help="the second run of every batch size: [fused-][compiled-](fp32|bf16|auto)[-byK] "
        "('none': only the exact decoder)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat the whole comparison; each round's speedups are against its own ManiSkill runs",
    )
    ap.add_argument("--world-model", default="-")
    ap.add_argument("--tokenizer", default="-")
    ap.add_argument(
        "--json", nargs="?", const="", help="write the figures (default: bench/results/wm_env_throughput.json)"
    )
    args = ap.parse_args()
    if args.fast_decoder != "none":
        DecoderOptions.from_name(args.fast_decoder)  # a bad name fails here, not after ManiSkill's runs
    cfg = load_config(args.config)
    size, frame_skip = cfg["trajectories"]["generator"]["image_size"], cfg["world_model"]["arch"]["frame_skip"]
    decoders = ["fp32"] + ([] if args.fast_decoder == "none" else [args.fast_decoder])
    rounds = []
    for i in range(args.rounds):
        if args.rounds > 1:
            print(f"round {i + 1} of {args.rounds}", flush=True)
        rounds.append(one_round(args, size, frame_skip, decoders))
    summary = summarise(rounds)
    if args.rounds > 1:
        print(f"median (min-max) over {args.rounds} rounds:")
        for name, figures in summary.items():
            line = ", ".join(f"{key} {f['median']:.2f} ({f['min']:.2f}-{f['max']:.2f})" for key, f in figures.items())
            print(f"  {name}: {line}", flush=True)
    if args.json is not None:
        save(
            "wm_env_throughput",
            {**vars(args), "image_size": size, "frame_skip": frame_skip},
            {"rounds": rounds, "summary": summary},
            threads=args.threads,
            path=args.json or None,
        )


if __name__ == "__main__":
    main()
