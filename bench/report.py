"""Writes docs/benchmarks.md from the figures in bench/results/*.json (each benchmark's ``--json``).

Usage: .venv/bin/python bench/report.py [--check]   (--check: fail if docs/benchmarks.md is not current)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from common import REPO, RESULTS

DOC = REPO / "docs" / "benchmarks.md"


def _machine(m: dict) -> str:
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"
    flags = ", ".join(m["cpu_flags"]) or "none of " + "/".join(("avx2", "avx512f", "avx512_bf16", "amx"))
    return (
        f"{m['cpu']} (family {m['cpu_family']}; {flags}), {m['cores']} cores{gpu}, {m['threads']} threads; "
        f"torch {m['torch']}, Python {m['python']}; commit `{m['git_commit']}`, {m['date']}"
    )


def _command(name: str, args: dict, result: str) -> str:
    """The command that wrote ``bench/results/<result>.json``, a run of ``bench/<name>.py``."""
    parts = [f".venv/bin/python bench/{name}.py"]
    for key, value in args.items():
        if key in ("json", "image_size", "frame_skip") or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        values = value if isinstance(value, list) else [] if value is True else [value]
        parts.append(" ".join([flag, *map(str, values)]))
    return " ".join(parts + ["--json" if result == name else f"--json bench/results/{result}.json"])


def _range(f: dict, fmt: str = "{:.1f}") -> str:
    return f"{fmt.format(f['median'])} ({fmt.format(f['min'])}-{fmt.format(f['max'])})"


def _header(columns: str) -> list[str]:
    """A Markdown table's header row and the separator under it, one ``---`` per column."""
    return [columns, "|" + " --- |" * (columns.count("|") - 1)]


def wm_env(r: dict) -> list[str]:
    lines = _header("| environment | env steps/s, median (min-max) | speedup over ManiSkill as shipped |")
    for name, figures in r["summary"].items():
        speed = figures.get("steps_per_s") or figures["env_steps_per_s"]
        ratio = figures.get("speedup_over_maniskill_as_shipped")
        title = f"ManiSkill, {name}" if "steps_per_s" in figures else f"world model, {name}"
        lines.append(f"| {title} | {_range(speed)} | {_range(ratio, '{:.2f}x') if ratio else ''} |")
    return lines


def decoder(r: dict) -> list[str]:
    lines = _header("| batch, decoder | ms per decode | frames/s | speedup over exact | PSNR against exact (dB) |")
    for name, f in r.items():
        lines.append(
            f"| {name} | {f['ms_per_decode']:.1f} | {f['frames_per_s']:.1f} | {f['speedup_over_exact']:.2f}x "
            f"| {f['psnr_vs_exact']:.0f} |"
        )
    return lines


def trajectories(r: dict) -> list[str]:
    lines = _header(
        "| run | trajectories | frames/trajectory | cameras | wall s | CPU s | trajectories/min | vs ManiSkill |"
    )
    for name, f in r.items():
        lines.append(
            f"| {name} | {f['trajectories']} | {f['frames'] / f['trajectories']:.1f} | {f['cameras']} "
            f"| {f['wall_s']:.1f} | {f['cpu_s']:.1f} | {f['traj_per_min']:.2f} | {f['ratio_traj_per_min']:.2f}x |"
        )
    return lines


def wm_training(r: dict) -> list[str]:
    mfu = "n/a (CPU)" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
    return [
        *_header("| device | parameters | batch x frames x tokens | s/step | tokens/s | TFLOP/s | MFU |"),
        f"| {r['device']} | {r['parameters'] / 1e6:.1f} M "
        f"| {r['batch_size']} x {r['window']} x {r['tokens_per_frame']} | {r['seconds_per_step']:.3f} "
        f"| {r['tokens_per_second']:,.0f} | {r['achieved_tflops']:.3f} | {mfu} |",
    ]


def ppo(r: dict) -> list[str]:
    lines = _header("| run | figure |")
    for name, f in r["ppo"].items():
        ratio = (
            f" = {f['speedup_over_fastest_maniskill']:.2f}x the fastest in ManiSkill"
            if f.get("speedup_over_fastest_maniskill") is not None
            else ""
        )
        shares = (
            f"; PPO {f['ppo_share']:.0%} of the time; the environment alone {f['env_only_steps_per_s']:.1f} "
            f"env steps/s, of its step: decoder {f['decoder_share']:.0%}, reward "
            f"{f['reward_share']:.0%}, world model and the rest {f['world_model_and_rest_share']:.0%}"
            if "ppo_share" in f
            else ""
        )
        if "per_job_env_steps_per_s" in f:  # --wm-side-by-side: the figure is all the jobs' together
            shares += "; each job " + ", ".join(f"{x:.1f}" for x in f["per_job_env_steps_per_s"])
            if f.get("speedup_over_one_job") is not None:
                ratio += f" = {f['speedup_over_one_job']:.2f}x one job with all the threads"
        rounds = ""
        if "spread" in f:  # --rounds: medians over the rounds
            s = f["spread"]
            rounds = f"; medians of {len(r['rounds'])} rounds, env steps/s {_range(s['env_steps_per_s'])}"
            for key in ("speedup_over_fastest_maniskill", "speedup_over_one_job"):
                if key in s:
                    rounds += f", ratio {_range(s[key], '{:.2f}x')}"
        lines.append(
            f"| PPO in {name} | {f['env_steps_per_s']:.1f} env steps/s{ratio} (updates included; "
            f"environments set up in {f['env_setup_s']:.1f} s{shares}{rounds}) |"
        )
    for name, f in r["evaluation"].items():
        lines.append(
            f"| evaluation, {name} | {f['episodes_per_minute']:.1f} episodes/min of {f['episode_steps']} policy steps "
            f"({f['policy_steps_per_s']:.1f} policy steps/s) |"
        )
    return lines


def reward_training(r: dict) -> list[str]:
    lines = _header("| the world model's hidden states | s/step | computing them once (s) | the config's steps (min) |")
    for name in ("at every step", "cached"):
        f = r[name]
        lines.append(
            f"| {name} | {f['seconds_per_step']:.3f} | {f['cache_s']:.1f} | {f['projected_s'] / 60:.1f} "
            f"({f['config_steps']} steps of {f['batch_size']} windows) |"
        )
    return [*lines, "", f"Caching: {r['speedup']:.1f}x faster."]


def env_startup(r: dict) -> list[str]:
    lines = _header(
        "| BRDF table | first environment (s), median (min-max) | whole process, wall (s) | whole process, CPU (s) |"
    )
    for name in ("SAPIEN's table", "stand-in"):
        f = r[name]
        lines.append(
            f"| {name} | {_range(f['first_env_s'], '{:.2f}')} | {_range(f['process_wall_s'])} | "
            f"{_range(f['process_cpu_s'])} |"
        )
    same = "the same frame" if r["same_frame"] else "DIFFERENT frames"
    return [
        *lines,
        "",
        f"The stand-in: {r['speedup_first_env']:.1f}x faster to the first environment; {same} in every process.",
    ]


def reward_trunk(r: dict) -> list[str]:
    lines = _header(
        "| precision | as shipped (ms/step), median (min-max) | fast (ms/step) | speedup | largest reward difference |"
    )
    for precision, f in r.items():
        lines.append(
            f"| {precision} | {_range(f['as shipped'])} | {_range(f['fast'])} | {_range(f['speedup'], '{:.2f}x')} | "
            f"{f['max_reward_difference']:.1e} |"
        )
    return lines


def temporal_attention(r: dict) -> list[str]:
    lines = _header(
        "| precision | scaled_dot_product_attention (ms/step), median (min-max) | one-query form (ms/step) | speedup "
        "| largest logit difference |"
    )
    for precision, f in r.items():
        lines.append(
            f"| {precision} | {_range(f['scaled_dot_product_attention'])} | {_range(f['one query'])} | "
            f"{_range(f['speedup'], '{:.2f}x')} | {f['max_logit_difference']:.1e} |"
        )
    return lines


def tokenize(r: dict) -> list[str]:
    lines = _header("| encoding | seconds per shard, median (min-max) | frames encoded |")
    for mode in ("clip by clip", "each frame once"):
        f = r[mode]
        lines.append(f"| {mode} | {_range(f['seconds'])} | {f['frames_encoded']:,} of {r['clip_frames']:,} |")
    same = "identical" if r["identical_tokens"] else "DIFFERENT"
    return [
        *lines,
        "",
        f"{r['clips']} clips. Each frame once: {_range(r['speedup'], '{:.2f}x')} faster; the token shards are {same}.",
    ]


TABLES: dict[str, tuple[str, Callable[[dict], list[str]]]] = {
    "wm_env_throughput": ("The world model as an environment against ManiSkill's CPU environment", wm_env),
    "decoder_throughput": ("The rollouts' decoder options", decoder),
    "trajectory_throughput": ("Recording trajectories: roboscape's generator against ManiSkill's", trajectories),
    "wm_training_throughput": ("World-model training throughput", wm_training),
    "ppo_throughput": ("PPO in ManiSkill and in the world model, and closed-loop evaluation", ppo),
    "reward_training": ("Training the embedding reward head", reward_training),
    "env_startup": ("A rendering process's first environment: SAPIEN's BRDF table against the stand-in", env_startup),
    "reward_trunk": ("The general reward's step: the perceptual trunk as shipped against the fast one", reward_trunk),
    "tokenize_throughput": ("Tokenizing a clip shard: each frame once against clip by clip", tokenize),
    "temporal_attention": (
        "A world-model step's temporal attention: torch's kernel against the one-query form",
        temporal_attention,
    ),
}
# Further runs of a benchmark (on a lent GPU, say) write bench/results/<benchmark>_<what>.json: each
# gets its own section under the benchmark's.


def markdown(results_dir: Path = RESULTS) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `.venv/bin/python bench/report.py` from `bench/results/*.json`; do not edit. Each section gives",
        "the command that produced its figures and the machine it ran on. Ratios are measured side by side in one run.",
        "",
    ]
    for name, (title, table) in TABLES.items():
        doc = (REPO / "bench" / f"{name}.py").read_text().split('"""')[1].strip().split("\n\n")[0]
        extra = sorted(p for p in results_dir.glob(f"{name}_*.json") if p.stem.removeprefix(name + "_") not in TABLES)
        for path in [p for p in [results_dir / f"{name}.json", *extra] if p.exists()]:
            result, record = path.stem, json.loads(path.read_text())
            gpu = record["machine"].get("gpu")
            heading = f"{title}, {path.stem.removeprefix(name + '_').replace('_', ' ')}" if result != name else title
            heading += f" (on {gpu})" if gpu else ""
            lines += [
                f"## {heading}",
                "",
                doc.replace("\n", " ") if result == name else "As above, with the arguments and machine below.",
                "",
                f"`{_command(name, record['arguments'], result)}`",
                "",
                f"Machine: {_machine(record['machine'])}.",
                "",
                *table(record["results"]),
                "",
            ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    text = markdown()
    if ap.parse_args().check:
        sys.exit(0 if DOC.exists() and DOC.read_text() == text else f"{DOC} is not current: run bench/report.py")
    DOC.write_text(text)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
