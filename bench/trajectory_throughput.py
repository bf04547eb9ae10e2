"""Rendered trajectories per minute per process: roboscape's generator against ManiSkill's own.

Both run as one fresh process each, side by side in one run, on the same machine, with the same
image size and the same thread settings (LP_NUM_THREADS=OMP_NUM_THREADS=1), and are timed as
whole processes (start-up included), writing their HDF5 output:

- ManiSkill:  python -m mani_skill.examples.motionplanning.panda.run -e PickCube-v1 -o rgb -n N -b cpu --shader S
              (one 128x128 camera, pd_joint_pos at 20 Hz, ManiSkill's motion-planning solution)
- roboscape:  the `trajectories` job on Pick and Place scenes: two cameras (third view + wrist),
              pd_ee_delta_pose at 25 Hz, optimal and suboptimal trajectories as the pipeline
              makes them; also with ManiSkill's full-detail robot meshes, for reference.

Usage:  .venv/bin/python bench/trajectory_throughput.py [--n 40] [--shader minimal|default] [--json [PATH]]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import environ, in_fresh_process, save


def roboscape_trajectories(n: int, size: int, detail: str, shader: str, out: str) -> dict:
    """The `trajectories` job on two Pick and Place scenes (run in a fresh process)."""
    from roboscape.sim.catalogue import build_catalogue
    from roboscape.sim.generator import GeneratorConfig
    from roboscape.sim.shard import generate_shard

    cat = build_catalogue(0, ["pick_place"], 2, 0)
    cfg = GeneratorConfig(
        n_optimal=n // 4,
        n_suboptimal=n // 4,
        n_exploratory=0,
        image_size=size,
        robot_visual_detail=None if detail == "full" else float(detail),
        shader=shader,
    )
    s = generate_shard(cat, "pick_place", 0, 2, cfg, f"{out}/t.h5", f"{out}/t.json", f"{out}/s.json", progress=False)
    return {
        "trajectories": sum(s["kept"].values()),
        "frames": s["frames"],
        "successful": s["kept_successful"],
        "failed_attempts": s["failed_attempts_by_cause"],
    }


def maniskill(n: int, image_size: int, shader: str, tmp: str) -> dict:
    """ManiSkill's own motion-planning script, timed as a whole process."""
    if image_size != 128:  # PickCube's camera is 128x128; other sizes go through sensor_configs
        sys.exit("ManiSkill's run.py has no image-size option; its PickCube camera is 128x128: use --image-size 128")
    cmd = [
        sys.executable,
        "-m",
        "mani_skill.examples.motionplanning.panda.run",
        "-e",
        "PickCube-v1",
        "-o",
        "rgb",
        "-n",
        str(n),
        "-b",
        "cpu",
        "--shader",
        shader,
        "--record-dir",
        tmp,
    ]
    t0, r0 = time.perf_counter(), os.times()
    with environ(LP_NUM_THREADS="1", OMP_NUM_THREADS="1", MS_SKIP_ASSET_DOWNLOAD_PROMPT="1"):
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
    r1, wall = os.times(), time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    eps = json.loads(next(Path(tmp).rglob("*.json")).read_text())["episodes"]
    return {
        "trajectories": len(eps),
        "frames": sum(e["elapsed_steps"] + 1 for e in eps),
        "cameras": 1,
        "successful": sum(bool(e.get("success")) for e in eps),
        "wall_s": wall,
        "cpu_s": (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system),
    }


def ours(n: int, image_size: int, detail: str, shader: str, tmp: str) -> dict:
    result, wall, cpu = in_fresh_process(roboscape_trajectories, n, image_size, detail, shader, tmp, threads=1)
    return {**result, "cameras": 2, "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40, help="trajectories per run (a multiple of 4)")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--shader", default="minimal", help="SAPIEN shader pack for both (ManiSkill's run.py --shader)")
    ap.add_argument("--skip-full-detail", action="store_true")
    ap.add_argument(
        "--json", nargs="?", const="", help="write the figures (default: bench/results/trajectory_throughput.json)"
    )
    args = ap.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b, tempfile.TemporaryDirectory() as c:
        runs["maniskill PickCube-v1"] = maniskill(args.n, args.image_size, args.shader, a)
        runs["roboscape pick_place"] = ours(args.n, args.image_size, "0.05", args.shader, b)
        if not args.skip_full_detail:
            runs["roboscape pick_place, full-detail robot"] = ours(args.n, args.image_size, "full", args.shader, c)
    base = runs["maniskill PickCube-v1"]
    print(
        f"image size {args.image_size}, shader {args.shader!r}, one process each, "
        f"LP_NUM_THREADS=1 OMP_NUM_THREADS=1, {os.cpu_count()} cores"
    )
    print(
        f"{'run':42s} {'traj':>5s} {'frames/traj':>11s} {'cams':>4s} {'wall s':>7s} {'cpu s':>7s} {'traj/min':>8s} "
        f"{'frames/s':>8s} {'vs ManiSkill':>12s}"
    )
    for name, r in runs.items():
        r["traj_per_min"] = 60 * r["trajectories"] / r["wall_s"]
        r["camera_frames_per_s"] = r["cameras"] * r["frames"] / r["wall_s"]
        r["ratio_traj_per_min"] = r["traj_per_min"] / (60 * base["trajectories"] / base["wall_s"])
        print(
            f"{name:42s} {r['trajectories']:5d} {r['frames'] / r['trajectories']:11.1f} {r['cameras']:4d} "
            f"{r['wall_s']:7.1f} {r['cpu_s']:7.1f} {r['traj_per_min']:8.2f} {r['camera_frames_per_s']:8.1f} "
            f"{r['ratio_traj_per_min']:11.2f}x"
        )
    if args.json is not None:
        save("trajectory_throughput", vars(args), runs, threads=1, path=args.json or None)


if __name__ == "__main__":
    main()
