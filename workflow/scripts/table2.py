"""Rule `table2`: the paper's Table 2 from the multi-task policy's evaluation episodes, each scene's
success per method beside the paper's, and each RL method's change against SFT, as CSV, Markdown and
LaTeX."""

import pandas as pd

from roboscape.report.tables import table2, table2_latex, table2_markdown, write_table
from roboscape.sim.catalogue import Catalogue
from roboscape.utils.io import read_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    p, i, o = snakemake.params, snakemake.input, snakemake.output
    catalogue = Catalogue.from_json(read_json(i.scenes))
    shards = {m: i[f"episodes_{m}"] for m in p.methods}
    objects = {s.scene_id: s.object for s in catalogue.scenes}
    episodes = {
        m: pd.concat([pd.read_csv(f) for f in files], ignore_index=True).assign(
            object=lambda e: e["scene_id"].map(objects)
        )
        for m, files in shards.items()
    }
    table = table2(episodes, pd.read_csv(i.paper), p.policy, p.bootstrap_samples, p.seed)
    write_table(table, table2_markdown(table, p.scenes), table2_latex(table), o.csv, o.md, o.tex)
    log.info("%d cells of %d methods", len(table), len(p.methods))
