"""Starting a training job (tokenizer, its decoder, or world model) in this process, or under
``accelerate launch`` with one process per GPU (or several CPU processes) -- sized from what the
Snakemake job was given (its ``gpu`` resource, which a Slurm job receives as ``--gpus``).

A job is a module-level ``run_job(spec) -> dict`` of a training module and a JSON spec that every
launched process reads (``python -m roboscape.train.launch spec.json``); the spec's ``entry``
names the module, which the caller has imported already (so a rule's declared library files, the
imports of its script, cover the job). Each module's ``run_job`` documents its spec.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from roboscape.utils.io import write_json

log = logging.getLogger("roboscape")
RunJob = Callable[[dict], dict]


def entry(run_job: RunJob) -> str:
    """The module of ``run_job``, which must be that module's ``run_job`` function."""
    module = getattr(run_job, "__module__", None)
    if getattr(run_job, "__name__", None) != "run_job" or module is None or not module.startswith("roboscape."):
        raise ValueError(f"a training job is a roboscape module's run_job function, got {run_job!r}")
    return module


def run_spec(spec_path: str | Path) -> dict:
    spec = json.loads(Path(spec_path).read_text())
    module = importlib.import_module(spec["entry"])
    return module.run_job(spec)


def free_port() -> int:
    """A free TCP port for the process group: two jobs on one node must not share torchrun's default."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_command(spec_path: str | Path, processes: int, cpu: bool) -> list[str]:
    # --multi_gpu starts the processes through torchrun; with ACCELERATE_USE_CPU they join a gloo
    # group on the CPU (accelerate's --cpu alone would start a single process).
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(processes),
        "--num_machines",
        "1",
        "--main_process_port",
        str(free_port()),
        "--dynamo_backend",
        "no",
        "--mixed_precision",
        "no" if cpu else "bf16",
        "-m",
        "roboscape.train.launch",
        str(spec_path),
    ]


def launch(
    run_job: RunJob,
    spec: dict,
    spec_path: str | Path,
    processes: int = 1,
    cpu: bool = False,
    threads: int | None = None,
) -> None:
    """Run ``run_job(spec)``: in this process if ``processes`` is 1, else under ``accelerate
    launch`` with ``processes`` processes (GPUs, or CPU processes with ``cpu``); ``threads``: per
    process. The spec, with its ``entry``, is written to ``spec_path`` first."""
    spec = {**spec, "entry": entry(run_job)}
    if processes > 1 and not cpu and (visible := torch.cuda.device_count()) < processes:
        raise RuntimeError(
            f"the job asked for {processes} GPUs but sees {visible} "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}): check the rule's gpu resource "
            "and what the scheduler granted"
        )
    write_json(spec_path, spec)
    if processes <= 1:
        run_job(spec)
        return
    env = dict(os.environ)
    if cpu:
        env["ACCELERATE_USE_CPU"] = "true"
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    subprocess.run(launch_command(spec_path, processes, cpu), check=True, env=env)


def launch_from_resources(run_job: RunJob, spec: dict, spec_path: str | Path, gpus: int, threads: int) -> None:
    """Size the launch from a Snakemake job's resources: one process per GPU, else one process
    with all the job's threads."""
    gpus = int(gpus)
    log.info("%s with %s", entry(run_job), f"{gpus} GPUs" if gpus else f"{threads} CPU threads")
    launch(run_job, spec, spec_path, processes=max(1, gpus), threads=max(1, threads // max(1, gpus)))


if __name__ == "__main__":
    run_spec(sys.argv[1])
