"""Starting a training job (tokenizer, its decoder, or world model) in this process, or under
``accelerate launch`` with one process per GPU (or several CPU processes) -- sized from what the
Snakemake job was given (its ``gpu`` resource, which a Slurm job receives as ``--gpus``).

A job is described by a JSON spec that every launched process reads
(``python -m roboscape.train.launch spec.json``):

- ``{"job": "tokenizer", "tokenizer": TokenizerConfig fields, "index": clip index, "run": run options, "train": ..., "out_dir": ..., "code_digest": ...}``
- ``{"job": "decoder", "tokenizer_dir": stage one's model, "index": clip index, "run": run options, "train": ..., "out_dir": ..., "code_digest": ...}``
- ``{"job": "world_model", "world_model": WorldModelConfig fields, "data": WorldModelData fields, "train": ..., "out_dir": ..., "code_digest": ..., "init_from": a model directory or null}``
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from roboscape.train.trainer import TrainConfig
from roboscape.utils.io import write_json

JOBS = ("tokenizer", "decoder", "world_model")
log = logging.getLogger("roboscape")


def job_kind(spec: dict) -> str:
    job = spec.get("job")
    if job not in JOBS:
        raise ValueError(f"training spec: 'job' must be one of {JOBS}, got {job!r}")
    return job


def run_spec(spec_path: str | Path) -> dict:
    spec = json.loads(Path(spec_path).read_text())
    job, train_cfg = job_kind(spec), TrainConfig(**spec["train"])
    # Each job imports only its own stage, so that the rules' declared library files stay exact.
    if job == "tokenizer":
        from roboscape.models.tokenizer import TokenizerConfig
        from roboscape.train.tokenizer_training import TokenizerRun, train_tokenizer

        return train_tokenizer(spec["index"], spec["out_dir"], TokenizerConfig(**spec["tokenizer"]), train_cfg,
                               TokenizerRun(**spec.get("run", {})), code_digest=spec.get("code_digest"))
    if job == "decoder":
        from roboscape.train.decoder_finetuning import finetune_decoder
        from roboscape.train.tokenizer_training import TokenizerRun

        return finetune_decoder(spec["tokenizer_dir"], spec["index"], spec["out_dir"], train_cfg,
                                TokenizerRun(**spec.get("run", {})), code_digest=spec.get("code_digest"),
                                context=spec.get("decoder_context", False))
    from roboscape.models.world_model import WorldModelConfig
    from roboscape.train.world_model_training import WorldModelData, train_world_model

    return train_world_model(WorldModelConfig(**spec["world_model"]), WorldModelData(**spec["data"]), train_cfg,
                             spec["out_dir"], code_digest=spec.get("code_digest"), init_from=spec.get("init_from"))


def free_port() -> int:
    """A free TCP port for the process group: two jobs on one node must not share torchrun's default."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_command(spec_path: str | Path, processes: int, cpu: bool) -> list[str]:
    # --multi_gpu starts the processes through torchrun; with ACCELERATE_USE_CPU they join a gloo
    # group on the CPU (accelerate's --cpu alone would start a single process).
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--main_process_port", str(free_port()), "--dynamo_backend", "no",
            "--mixed_precision", "no" if cpu else "bf16", "-m", "roboscape.train.launch", str(spec_path)]


def launch(spec: dict, spec_path: str | Path, processes: int = 1, cpu: bool = False, threads: int | None = None) -> None:
    """Run the job: in this process if ``processes`` is 1, else under ``accelerate launch`` with
    ``processes`` processes (GPUs, or CPU processes with ``cpu``); ``threads``: per process."""
    job_kind(spec)
    if processes > 1 and not cpu and (visible := torch.cuda.device_count()) < processes:
        raise RuntimeError(f"the job asked for {processes} GPUs but sees {visible} "
                           f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}): check the rule's gpu resource "
                           "and what the scheduler granted")
    write_json(spec_path, spec)
    if processes <= 1:
        run_spec(spec_path)
        return
    env = dict(os.environ)
    if cpu:
        env["ACCELERATE_USE_CPU"] = "true"
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    subprocess.run(launch_command(spec_path, processes, cpu), check=True, env=env)


def launch_from_resources(spec: dict, spec_path: str | Path, gpus: int, threads: int) -> None:
    """Size the launch from a Snakemake job's resources: one process per GPU, else one process
    with all the job's threads."""
    gpus = int(gpus)
    job = job_kind(spec)
    what = {"tokenizer": "tokenizer", "decoder": "tokenizer's decoder"}.get(job) or f"{spec['world_model']['control']} world model"
    log.info("training the %s with %s", what, f"{gpus} GPUs" if gpus else f"{threads} CPU threads")
    launch(spec, spec_path, processes=max(1, gpus), threads=max(1, threads // max(1, gpus)))


if __name__ == "__main__":
    run_spec(sys.argv[1])
