"""Rule `summary`: the tier's results as one Markdown page."""

from roboscape.report.summary import summary_markdown
from roboscape.utils.io import atomic_path
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    page = summary_markdown(snakemake.params.outdir, {name: snakemake.input[name] for name in snakemake.params.names})
    with atomic_path(snakemake.output[0]) as tmp:
        tmp.write_text(page)
    log.info("\n%s", page)
