"""Rules `train_wm_action` and `train_wm_text`: train one world model (resuming from its last
checkpoint, or warm-started from the other world model's weights); with several GPUs, under
`accelerate launch` with one process per GPU."""

from pathlib import Path

import torch

from roboscape.train.launch import launch_from_resources
from roboscape.train.world_model_training import run_job
from roboscape.utils.logs import job_log
from roboscape.utils.provenance import source_digest

with job_log(snakemake.log[0]) as log:
    p = snakemake.params
    torch.set_num_threads(snakemake.threads)
    out_dir = Path(snakemake.output.summary).parent
    init_weights = snakemake.input.get("init_weights")  # the other world model's, for a warm start
    spec = {
        "world_model": {**p.arch, "control": p.control, f"{p.control}_dropout": p.dropout},
        "data": {
            **p.data,
            "token_index": snakemake.input.index,
            "instruction_cache": snakemake.input.get("instructions"),
        },
        "train": dict(p.train),
        "out_dir": str(out_dir),
        "code_digest": source_digest(snakemake.input.lib),
        "init_from": str(Path(init_weights).parent) if init_weights else None,
        "changed_token_weight": p.changed_token_weight,
    }
    launch_from_resources(run_job, spec, out_dir / "job.json", snakemake.resources.gpu, snakemake.threads)
    log.info("done: %s", Path(snakemake.output.summary).read_text())
