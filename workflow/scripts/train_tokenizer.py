"""Rules `train_tokenizer` (stage one: the whole tokenizer) and `finetune_decoder` (stage two: its
decoder alone on the frozen encoder's tokens): train, resuming from the last checkpoint, and
evaluate; with several GPUs, under `accelerate launch` with one process per GPU."""

from dataclasses import asdict
from pathlib import Path

import torch

from roboscape.train.launch import launch_from_resources
from roboscape.train.tokenizer_training import tokenizer_config
from roboscape.utils.io import read_json
from roboscape.utils.logs import job_log
from roboscape.utils.provenance import source_digest

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    out_dir = Path(snakemake.output.eval).parent
    model_cfg, run = tokenizer_config(p.tokenizer, p.image_size)
    if snakemake.rule == "finetune_decoder":
        job = {"job": "decoder", "tokenizer_dir": str(Path(snakemake.input.weights).parent),
               "decoder_context": p.decoder_context}
    else:
        job = {"job": "tokenizer", "tokenizer": asdict(model_cfg)}
    spec = {
        **job,
        "index": snakemake.input.index,
        "run": asdict(run),
        "train": dict(p.train),
        "out_dir": str(out_dir),
        "code_digest": source_digest(snakemake.input.lib),
    }
    launch_from_resources(spec, out_dir / "job.json", snakemake.resources.gpu, snakemake.threads)
    log.info("held-out (OOD) frames: %s", read_json(snakemake.output.eval).get("held_out_ood"))
