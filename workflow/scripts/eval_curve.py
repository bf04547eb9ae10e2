"""Rule `eval_curve`: every PPO snapshot of one RL run closed loop in ManiSkill, in and out of
domain (the points of the paper's Figure 2; a killed job resumes)."""

from pathlib import Path

import pandas as pd
import torch

from roboscape.eval.learning_curves import evaluate_snapshots
from roboscape.eval.policy_eval import DOMAINS, cell_scenes, shard_episodes
from roboscape.models.text_encoder import load_sentences
from roboscape.policy.loading import load_policy
from roboscape.sim.catalogue import Catalogue
from roboscape.sim.policy_env import PolicyEnv
from roboscape.utils.io import atomic_path, read_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p, i, w = snakemake.params, snakemake.input, snakemake.wildcards
    catalogue = Catalogue.from_json(read_json(i.scenes))
    instructions = {k: v.numpy() for k, v in load_sentences(i.instructions).items()}
    out = Path(snakemake.output[0])
    rows = []
    for domain in DOMAINS:
        scenes = cell_scenes(catalogue, w.task, domain, p.train_scenes)
        episodes = shard_episodes(scenes, w.task, domain, p.episodes, 0, 1, p.seed)
        env = PolicyEnv(scenes, instructions, task_params=catalogue.task_params, terminate_on_success=False, **p.env)
        try:
            rows += evaluate_snapshots(i.snapshots, load_policy, env, episodes, out.with_name(f".{out.stem}.{domain}"))
        finally:
            env.close()
    table = pd.DataFrame(rows).assign(method=w.method, run=int(w.run))
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    final = table[table["update"] == table["update"].max()]
    log.info(
        "%s %s run %s: %d snapshots; the final policy solved %d of %d episodes",
        w.method,
        w.task,
        w.run,
        table["update"].nunique(),
        final["success_once"].sum(),
        len(final),
    )
