"""Rule `train_tokenizer`: train the tokenizer (resuming from its last checkpoint) and evaluate it."""

from pathlib import Path

import torch

from roboscape.train.tokenizer_training import tokenizer_config, train_tokenizer
from roboscape.train.trainer import TrainConfig
from roboscape.utils.logs import job_log
from roboscape.utils.provenance import source_digest

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    model_cfg, run = tokenizer_config(p.tokenizer, p.image_size)
    result = train_tokenizer(
        snakemake.input.index, Path(snakemake.output.eval).parent, model_cfg, TrainConfig(**p.train),
        **run, code_digest=source_digest(snakemake.input.lib),
    )
    log.info("held-out (OOD) frames: %s", result.get("held_out_ood"))
