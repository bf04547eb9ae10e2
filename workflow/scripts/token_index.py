"""Rule `token_index`: the clip index pointed at the token shards."""

from roboscape.data.tokens import token_index
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    index = token_index(
        snakemake.input.index,
        dict(zip(snakemake.input.clips, snakemake.input.tokens, strict=True)),
        snakemake.output[0],
    )
    log.info("%d clips indexed", len(index))
