"""Rule `finetune_decoder` (stage two: the tokenizer's decoder alone on the frozen encoder's
tokens): train, resuming from the last checkpoint, evaluate against stage one and draw both stages'
reconstructions of held-out frames; with several GPUs, under `accelerate launch`."""

from dataclasses import asdict
from pathlib import Path

import torch

from roboscape.models.tokenizer import Tokenizer
from roboscape.report.tokenizer_figures import reconstruction_sheet
from roboscape.train.decoder_finetuning import run_job
from roboscape.train.launch import launch_from_resources
from roboscape.train.tokenizer_training import TokenizerRun
from roboscape.utils.io import read_json
from roboscape.utils.logs import job_log
from roboscape.utils.provenance import source_digest

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p, i = snakemake.params, snakemake.input
    out_dir = Path(snakemake.output.eval).parent
    run = TokenizerRun(**p.run)
    spec = {
        "tokenizer_dir": str(Path(i.weights).parent),
        "decoder_context": p.decoder_context,
        "decoder_channels": p.decoder_channels,
        "index": i.index,
        "run": asdict(run),
        "train": dict(p.train),
        "out_dir": str(out_dir),
        "code_digest": source_digest(i.lib),
    }
    launch_from_resources(run_job, spec, out_dir / "job.json", snakemake.resources.gpu, snakemake.threads)
    stages = {
        "stage one": Tokenizer.from_pretrained(Path(i.weights).parent),
        "stage two": Tokenizer.from_pretrained(Path(snakemake.output.weights).parent),
    }
    _, held_out = run.frames(i.index, context=p.decoder_context)
    reconstruction_sheet(stages, held_out, snakemake.output.figure)
    log.info("held-out (OOD) frames: %s", read_json(snakemake.output.eval).get("held_out_ood"))
