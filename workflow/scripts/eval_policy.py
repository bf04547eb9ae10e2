"""Rule `eval_policy`: one shard of a table cell, the policy closed loop in ManiSkill (a killed job
resumes from the episodes it finished)."""

from pathlib import Path

import pandas as pd
import torch

from roboscape.eval.policy_eval import cell_scenes, evaluate_shard, save_recorded, shard_episodes
from roboscape.models.text_encoder import load_sentences
from roboscape.policy.loading import load_policy
from roboscape.report.rollout_figures import grid_gif
from roboscape.sim.catalogue import Catalogue
from roboscape.sim.policy_env import PolicyEnv
from roboscape.utils.io import atomic_path, read_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p, i, w = snakemake.params, snakemake.input, snakemake.wildcards
    catalogue = Catalogue.from_json(read_json(i.scenes))
    scenes = cell_scenes(catalogue, w.group, w.domain, p.train_scenes)
    episodes = shard_episodes(scenes, w.group, w.domain, p.episodes, int(w.shard), p.shards, p.seed)
    instructions = {k: v.numpy() for k, v in load_sentences(i.instructions).items()}
    policy = load_policy(Path(i.policy).parent)
    env = PolicyEnv(scenes, instructions, task_params=catalogue.task_params, terminate_on_success=False, **p.env)
    try:
        out = Path(snakemake.output.episodes)
        rows, videos = evaluate_shard(policy, env, episodes, p.gif_episodes, out.with_name(f".{out.name}.partial"))
    finally:
        env.close()
    with atomic_path(snakemake.output.episodes) as tmp:
        pd.DataFrame(rows).assign(method=w.method).to_csv(tmp, index=False)
    grid_gif([[v] for v in videos], snakemake.output.gif)
    save_recorded(videos, episodes, snakemake.output.frames)
    log.info(
        "%s %s %s shard %s: %d of %d episodes solved at the end",
        w.method,
        w.group,
        w.domain,
        w.shard,
        sum(r["success_at_end"] for r in rows),
        len(rows),
    )
