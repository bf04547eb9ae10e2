"""Rule `table1`: the paper's Table 1 from every method's evaluation episodes, beside the paper's
numbers, as CSV, Markdown and LaTeX."""

import pandas as pd

from roboscape.report.tables import table1, table1_latex, table1_markdown, write_table
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    p, i, o = snakemake.params, snakemake.input, snakemake.output
    episodes = {method: pd.read_csv(path) for method, path in zip(p.methods, i.episodes, strict=True)}
    table = table1(episodes, pd.read_csv(i.paper), p.policy, p.bootstrap_samples, p.seed)
    write_table(table, table1_markdown(table, p.why_not_run), table1_latex(table), o.csv, o.md, o.tex)
    log.info("%d cells run, %d not run", (table["status"] == "run").sum(), (table["status"] != "run").sum())
