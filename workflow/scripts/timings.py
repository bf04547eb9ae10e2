"""Rule `timings`: where the run's time went, from every job's Snakemake benchmark."""

from pathlib import Path

from roboscape.report.timings import write_timings
from roboscape.utils.logs import job_log
from roboscape.utils.provenance import git_commit

with job_log(snakemake.log[0]) as log:
    p = snakemake.params
    # the commit the run finished on: a rerun in part reruns this rule too
    outdir = Path(snakemake.output.totals).parent  # the outputs are roboscape.report.timings.FILES there
    totals = write_timings(p.benchmarks, p.tier, outdir, commit=git_commit(snakemake.scriptdir))
    log.info("%s", totals)
