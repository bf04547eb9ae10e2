"""Rule `encode_instructions`: the instruction cache of the text world model."""

import pandas as pd

from roboscape.models.text_encoder import encode_instructions
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    instructions = pd.read_csv(snakemake.input.index)["instruction"].tolist()
    rows = encode_instructions(instructions, snakemake.output[0], backend=snakemake.params.backend)
    log.info("%d distinct instructions encoded with %s", len(rows), snakemake.params.backend)
