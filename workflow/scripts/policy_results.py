"""Rule `policy_results`: every evaluated episode of one method, and its success rates per cell and scene."""

import pandas as pd

from roboscape.eval.episode_records import summarise
from roboscape.utils.io import atomic_path, write_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    episodes = pd.concat([pd.read_csv(f, keep_default_na=False) for f in snakemake.input.episodes], ignore_index=True)
    episodes["failure"] = episodes["failure"].replace("", None)
    with atomic_path(snakemake.output.episodes) as tmp:
        episodes.to_csv(tmp, index=False)
    summary = summarise(episodes.to_dict("records"))
    write_json(snakemake.output.summary, summary)
    for cell, s in summary["cells"].items():
        log.info("%s: %d episodes, success at the end %s", cell, s["episodes"], s["success_at_end"])
