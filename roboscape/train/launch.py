"""Starting a world-model training job in this process, or under ``accelerate launch`` with one
process per GPU (or several CPU processes) -- sized from what the Snakemake job was given.

The job is described by a JSON spec (``{"world_model": ..., "data": ..., "train": ..., "out_dir": ..., "code_digest": ...}``)
that every launched process reads: ``python -m roboscape.train.launch spec.json``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from roboscape.models.world_model import WorldModelConfig
from roboscape.train.trainer import TrainConfig
from roboscape.train.world_model_training import WorldModelData, train_world_model
from roboscape.utils.io import write_json


def run_spec(spec_path: str | Path) -> dict:
    spec = json.loads(Path(spec_path).read_text())
    return train_world_model(WorldModelConfig(**spec["world_model"]), WorldModelData(**spec["data"]),
                             TrainConfig(**spec["train"]), spec["out_dir"], code_digest=spec.get("code_digest"))


def free_port() -> int:
    """A free TCP port for the process group: two jobs on one node must not share torchrun's default."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(spec: dict, spec_path: str | Path, processes: int = 1, cpu: bool = False, threads: int | None = None) -> None:
    """Run the job: in this process if ``processes`` is 1, else under ``accelerate launch`` with
    ``processes`` processes (GPUs, or CPU processes with ``cpu``); ``threads``: per process."""
    write_json(spec_path, spec)
    if processes <= 1:
        run_spec(spec_path)
        return
    # --multi_gpu starts the processes through torchrun; with ACCELERATE_USE_CPU they join a gloo
    # group on the CPU (accelerate's --cpu alone would start a single process).
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", "1", "--main_process_port", str(free_port()), "--dynamo_backend", "no", "--mixed_precision", "no" if cpu else "bf16",
               "-m", "roboscape.train.launch", str(spec_path)]
    env = dict(os.environ)
    if cpu:
        env["ACCELERATE_USE_CPU"] = "true"
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    subprocess.run(command, check=True, env=env)


if __name__ == "__main__":
    run_spec(sys.argv[1])
