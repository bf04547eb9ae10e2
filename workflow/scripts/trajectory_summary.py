"""Rule `trajectory_summary`: totals over every trajectory shard."""

from roboscape.sim.shard_summary import merge_summaries
from roboscape.utils.io import read_json, write_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    total = merge_summaries([read_json(p) for p in snakemake.input.summaries])
    write_json(snakemake.output[0], total)
    log.info("%s", {k: total[k] for k in ("kept", "failed_attempts_by_cause")})
