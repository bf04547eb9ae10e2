"""Rule `train_tokenizer`: train the tokenizer (resuming from its last checkpoint) and evaluate it."""

from pathlib import Path

import torch

from roboscape.models.tokenizer import TokenizerConfig
from roboscape.train.tokenizer_training import train_tokenizer
from roboscape.train.trainer import TrainConfig
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    t = dict(p.tokenizer)
    run = {k: t.pop(k) for k in ("view", "perceptual_backend", "perceptual_weight", "frame_stride", "eval_frames")}
    result = train_tokenizer(
        snakemake.input.index, Path(snakemake.output.eval).parent,
        TokenizerConfig(image_size=p.image_size, **t), TrainConfig(**p.train), **run,
    )
    log.info("held-out (OOD) frames: %s", result.get("held_out_ood"))
