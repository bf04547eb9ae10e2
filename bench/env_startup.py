"""A rendering process's first environment: SAPIEN's computed BRDF table against roboscape's stand-in.

Each round starts two fresh processes, side by side in one run, with one llvmpipe and torch thread
each: one builds its first environment (`make_env` and the first reset, which renders) with
SAPIEN's default BRDF table, which SAPIEN computes on the render device for the first camera that
renders; the other with the 1x1 stand-in (`roboscape/sim/brdf_lut.py`). Every job that builds a
ManiSkill scene pays this once. Both processes render the same frame; its digest is compared.

Usage:  .venv/bin/python bench/env_startup.py [--rounds 3] [--image-size 128] [--json [PATH]]
"""

from __future__ import annotations

import argparse
import hashlib
import os

from common import in_fresh_process, save, spread

MODES = ("SAPIEN's table", "stand-in")


def first_environment(stand_in: bool, image_size: int) -> dict:
    """Build and reset a Pick and Place environment (run in a fresh process)."""
    import time

    import roboscape.sim.tasks
    from roboscape.sim.catalogue import build_catalogue
    from roboscape.sim.env import make_env

    if not stand_in:
        roboscape.sim.tasks.skip_default_brdf_lut = lambda sub_scenes: 0
    scene = build_catalogue(0, ["pick_place"], 1, 0).scenes[0]
    t0 = time.perf_counter()
    env = make_env(scene, image_size=image_size)
    obs, _ = env.reset(seed=0)
    seconds = time.perf_counter() - t0
    frame = obs["sensor_data"]["third_view"]["rgb"].numpy()
    env.close()
    return {"first_env_s": seconds, "frame_sha256": hashlib.sha256(frame.tobytes()).hexdigest()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--json", nargs="?", const="", help="write the figures (default: bench/results/env_startup.json)")
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            result, wall, cpu = in_fresh_process(first_environment, mode == "stand-in", args.image_size, threads=1)
            runs[mode].append({**result, "process_wall_s": wall, "process_cpu_s": cpu})
    digests = {r["frame_sha256"] for rounds in runs.values() for r in rounds}
    results = {
        mode: {key: spread([r[key] for r in rounds]) for key in ("first_env_s", "process_wall_s", "process_cpu_s")}
        for mode, rounds in runs.items()
    }
    results["speedup_first_env"] = (
        results[MODES[0]]["first_env_s"]["median"] / results[MODES[1]]["first_env_s"]["median"]
    )
    results["same_frame"] = len(digests) == 1
    print(f"image size {args.image_size}, {args.rounds} rounds, one thread a process, {os.cpu_count()} cores")
    for mode in MODES:
        f = results[mode]
        print(
            f"{mode:16s} first environment {f['first_env_s']['median']:6.2f} s "
            f"({f['first_env_s']['min']:.2f}-{f['first_env_s']['max']:.2f}); whole process "
            f"{f['process_wall_s']['median']:6.2f} s wall, {f['process_cpu_s']['median']:6.2f} s CPU"
        )
    print(f"speedup of the first environment: {results['speedup_first_env']:.1f}x; same frame: {results['same_frame']}")
    if args.json is not None:
        save("env_startup", vars(args), results, threads=1, path=args.json or None)


if __name__ == "__main__":
    main()
