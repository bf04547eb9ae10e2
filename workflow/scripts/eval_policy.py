"""Rule `eval_policy`: one shard of a policy's evaluation, closed loop in ManiSkill, in each domain
it is evaluated in (a killed job resumes from the episodes it finished)."""

from pathlib import Path

import pandas as pd
import torch

from roboscape.eval.episode_records import save_recorded
from roboscape.eval.policy_eval import cell_scenes, evaluate_shard, shard_episodes
from roboscape.models.text_encoder import load_sentences
from roboscape.policy.loading import load_policy
from roboscape.report.rollout_figures import grid_gif
from roboscape.sim.catalogue import Catalogue, group_domains
from roboscape.sim.policy_env import PolicyEnv
from roboscape.utils.io import atomic_path, read_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p, i, w = snakemake.params, snakemake.input, snakemake.wildcards
    catalogue = Catalogue.from_json(read_json(i.scenes))
    instructions = {k: v.numpy() for k, v in load_sentences(i.instructions).items()}
    policy = load_policy(Path(i.policy).parent)
    out = Path(snakemake.output.episodes)
    rows, recorded = [], []
    for domain in group_domains(w.group):
        scenes = cell_scenes(catalogue, w.group, domain, p.train_scenes)
        episodes = shard_episodes(scenes, w.group, domain, p.episodes[domain], int(w.shard), p.shards, p.seed)
        env = PolicyEnv(scenes, instructions, task_params=catalogue.task_params, terminate_on_success=False, **p.env)
        try:
            done, videos = evaluate_shard(
                policy, env, episodes, p.gif_episodes, out.with_name(f".{out.name}.{domain}.partial")
            )
        finally:
            env.close()
        rows += done
        recorded += list(zip(episodes, videos, strict=False))
        log.info(
            "%s %s run %s %s shard %s: %d of %d episodes solved at the end",
            w.method,
            w.group,
            w.run,
            domain,
            w.shard,
            sum(r["success_at_end"] for r in done),
            len(done),
        )
    with atomic_path(snakemake.output.episodes) as tmp:
        pd.DataFrame(rows).assign(method=w.method, run=int(w.run)).to_csv(tmp, index=False)
    grid_gif([[frames] for _, frames in recorded], snakemake.output.gif)
    save_recorded({(episode.domain, episode.index): frames for episode, frames in recorded}, snakemake.output.frames)
