"""Rule `figure_rollouts`: the paper's Figure 4 (in domain) or 5 (out of domain), from the frames the
evaluation recorded of each cell's first episode."""

import pandas as pd

from roboscape.eval.episode_records import load_recorded
from roboscape.report.policy_figures import Rollout, rollout_comparison
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    p, i, o, domain = snakemake.params, snakemake.input, snakemake.output, snakemake.wildcards.domain
    rollouts: dict[str, dict[str, Rollout]] = {}
    for (task, method), csv, npz in zip(p.cells, i.episodes, i.frames, strict=True):
        episodes = pd.read_csv(csv)
        first = episodes[episodes["domain"] == domain].sort_values("episode").iloc[0]
        frames = load_recorded(npz)[(domain, int(first["episode"]))]
        rollouts.setdefault(task, {})[method] = Rollout(frames, bool(first["success_once"]), str(first["scene_id"]))
    rollout_comparison(rollouts, o.png, o.pdf, o.gif, p.title)
    log.info("%s: %d tasks x %d methods", domain, len(rollouts), len(p.cells) // len(rollouts))
