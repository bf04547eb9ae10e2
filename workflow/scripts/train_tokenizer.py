"""Rule `train_tokenizer` (stage one: the whole tokenizer): train, resuming from the last checkpoint,
and evaluate; with several GPUs, under `accelerate launch` with one process per GPU."""

from dataclasses import asdict
from pathlib import Path

import torch

from roboscape.models.tokenizer import TokenizerConfig
from roboscape.train.launch import launch_from_resources
from roboscape.train.tokenizer_training import TokenizerRun, run_job
from roboscape.utils.io import read_json
from roboscape.utils.logs import job_log
from roboscape.utils.provenance import source_digest

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    out_dir = Path(snakemake.output.eval).parent
    spec = {
        "tokenizer": asdict(TokenizerConfig(image_size=p.image_size, **p.model)),
        "index": snakemake.input.index,
        "run": asdict(TokenizerRun(**p.run)),
        "train": dict(p.train),
        "out_dir": str(out_dir),
        "code_digest": source_digest(snakemake.input.lib),
    }
    launch_from_resources(run_job, spec, out_dir / "job.json", snakemake.resources.gpu, snakemake.threads)
    log.info("held-out (OOD) frames: %s", read_json(snakemake.output.eval).get("held_out_ood"))
