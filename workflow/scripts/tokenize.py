"""Rule `tokenize`: encode one clip shard with the trained tokenizer."""

from pathlib import Path

import torch

from roboscape.data.tokens import tokenize_clip_shard
from roboscape.models.tokenizer import Tokenizer
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    tokenizer = Tokenizer.from_pretrained(Path(snakemake.input.weights).parent)
    log.info(
        "%s", tokenize_clip_shard(tokenizer, snakemake.input.clips, snakemake.output[0], view=snakemake.params.view)
    )
