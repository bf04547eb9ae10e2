"""What every benchmark shares: the machine it ran on, a config tier, fresh child processes, and
where results go (``bench/results/<benchmark>.json``, from which ``bench/report.py`` writes
``docs/benchmarks.md``)."""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from queue import Empty
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "schemas"))
from configuration import tier_config  # noqa: E402

from roboscape.utils.provenance import git_commit  # noqa: E402

RESULTS = REPO / "bench" / "results"
# The CPU features that decide how fast torch runs here (bf16 compute, AMX tiles, AVX-512).
FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")


def machine(threads: int | None = None) -> dict:
    """The CPU model and its relevant flags, cores, torch version and the git commit."""
    import torch

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    family = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("cpu family")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), []))
    return {
        "cpu": model,
        "cpu_family": family,
        "cpu_flags": [f for f in FLAGS if f in flags],
        "cores": os.cpu_count(),
        "threads": threads,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git_commit": git_commit(REPO),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def load_config(tier: str | None = None) -> dict:
    """config.yaml, with a tier's overlay (a path such as config/tiny.yaml) merged over it."""
    return tier_config(tier)


def rollout_tokenizer(cfg: dict):
    """A tokenizer of the config's architecture, as rollouts decode with it (stage two's decoder), random weights."""
    from roboscape.models.tokenizer import Tokenizer, TokenizerConfig

    return Tokenizer(
        TokenizerConfig(
            image_size=cfg["trajectories"]["generator"]["image_size"],
            **cfg["tokenizer"]["model"],
            decoder_context=cfg["tokenizer"]["decoder_context"],
            decoder_channels=cfg["tokenizer"]["decoder_channels"],
        )
    ).eval()


def tokenizer_or_random(path: str, tier: str | None = None):
    """The trained tokenizer saved at ``path``, or with ``-`` one of ``tier``'s rollout architecture
    and random weights (:func:`rollout_tokenizer`)."""
    from roboscape.models.tokenizer import Tokenizer

    return rollout_tokenizer(load_config(tier)) if path == "-" else Tokenizer.from_pretrained(path)


def action_world_model(cfg: dict, tokenizer, guidable: bool = False):
    """An action world model of the config's architecture for ``tokenizer``'s tokens, random weights;
    ``guidable``: with a null action (trained with action dropout) even where the config has none."""
    from roboscape.models.world_model import WorldModel, WorldModelConfig

    dropout = cfg["world_model"]["guidance"]["action_dropout"] or (0.1 if guidable else 0.0)
    return WorldModel(
        WorldModelConfig(
            **cfg["world_model"]["arch"],
            codebook_size=tokenizer.cfg.codebook_size,
            tokens_hw=tokenizer.cfg.tokens_hw,
            control="action",
            action_dropout=dropout,
        )
    ).eval()


@contextmanager
def environ(**values: str):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _child(queue, fn, args):
    queue.put(fn(*args))


def _result(queue, proc) -> Any:
    """What ``proc`` puts on ``queue``; a process that dies first (its error already printed) stops
    the benchmark rather than leaving it waiting."""
    while True:
        try:
            return queue.get(timeout=1)
        except Empty:
            if not proc.is_alive():
                raise RuntimeError(
                    f"the benchmark's process ended (exit code {proc.exitcode}) without a result"
                ) from None


def in_fresh_processes(
    fn: Callable[..., Any], arg_lists: list[tuple], threads: int = 1
) -> tuple[list[Any], float, float]:
    """``fn(*args)`` for each of ``arg_lists``, each in its own new Python process (spawned: nothing
    inherited but the environment), all started together and running side by side, each with
    ``threads`` torch/OpenMP/llvmpipe threads; returns (their results in order, wall seconds until
    the last ended, CPU seconds of all of them, start-up included)."""
    ctx = multiprocessing.get_context("spawn")
    n = str(threads)
    with environ(OMP_NUM_THREADS=n, LP_NUM_THREADS=n, MS_SKIP_ASSET_DOWNLOAD_PROMPT="1"):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        children = []
        for args in arg_lists:
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(queue, fn, args))
            proc.start()
            children.append((queue, proc))
        results = [_result(queue, proc) for queue, proc in children]
        for _, proc in children:
            proc.join()
        wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _, proc in children:
        if proc.exitcode:
            raise RuntimeError(f"{fn.__name__} failed in its process (exit code {proc.exitcode})")
    return results, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def in_fresh_process(fn: Callable[..., Any], *args: Any, threads: int = 1) -> tuple[Any, float, float]:
    """``fn(*args)`` in a new Python process with ``threads`` threads (``in_fresh_processes`` with one);
    returns (its result, wall seconds, CPU seconds of the whole process, start-up included)."""
    results, wall, cpu = in_fresh_processes(fn, [args], threads)
    return results[0], wall, cpu


def spread(values: list[float]) -> dict:
    """The median, min and max over a benchmark's rounds (what ``bench/report.py`` prints as ``median (min-max)``)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def side_by_side(ms: dict[str, list[float]], base: str, other: str) -> dict:
    """Variants timed in interleaved rounds (milliseconds per round): each one's spread, and the
    spread of the per-round speedup of ``other`` over ``base`` (``speedup``)."""
    ratios = [a / b for a, b in zip(ms[base], ms[other], strict=True)]
    return {**{name: spread(values) for name, values in ms.items()}, "speedup": spread(ratios)}


def over_rounds(per_round: list[dict], keys: tuple[str, ...]) -> dict:
    """One configuration's figures from each round: the spread (median, min, max) over the rounds of
    each of ``keys`` that it has (a key missing or None in the first round is left out)."""
    return {key: spread([f[key] for f in per_round]) for key in keys if per_round[0].get(key) is not None}


def save(name: str, args: dict, results: dict, threads: int | None = None, path: str | Path | None = None) -> Path:
    """Write a benchmark's figures with what ran them, to ``path`` or ``bench/results/<name>.json``."""
    path = Path(path) if path else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": name, "machine": machine(threads), "arguments": args, "results": results}
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")
    return path
