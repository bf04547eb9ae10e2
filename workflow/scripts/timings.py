"""Rule `timings`: where the run's time went, from every job's Snakemake benchmark."""

from roboscape.report.timings import write_timings
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    p = snakemake.params
    totals = write_timings(p.benchmarks, p.tier, p.outdir)
    log.info("%s", totals)
