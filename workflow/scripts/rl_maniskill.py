"""Rule `rl_maniskill`: PPO from the SFT policy in one policy group's training scenes, in parallel
CPU ManiSkill environments, with each scene's task's rule-based dense reward (a killed job resumes)."""

from pathlib import Path

import torch

from roboscape.models.text_encoder import load_sentences
from roboscape.rl.maniskill import SimEnvConfig, train_in_maniskill
from roboscape.rl.ppo import PPOArgs
from roboscape.sim.catalogue import Catalogue
from roboscape.utils.io import read_json
from roboscape.utils.logs import job_log
from roboscape.utils.provenance import source_digest

# The environments' worker processes are spawned and import this file again: they must not run it.
if __name__ == "__main__":
    with job_log(snakemake.log[0]) as log:
        # one thread whether or not the environments run in worker processes (which take the job's
        # other CPUs), so that rl.maniskill.asynchronous leaves the policy's numbers as they are
        torch.set_num_threads(1)
        p, i = snakemake.params, snakemake.input
        catalogue = Catalogue.from_json(read_json(i.scenes))
        scenes = catalogue.policy_scenes(snakemake.wildcards.group, p.train_scenes)
        instructions = {k: v.numpy() for k, v in load_sentences(i.instructions).items()}
        result = train_in_maniskill(
            Path(i.init).parent,
            scenes,
            instructions,
            # how the environments run, not what they compute (the same weights either way): read
            # from the config rather than a param, so that changing it reruns nothing
            SimEnvConfig(**p.env, asynchronous=snakemake.config["rl"]["maniskill"]["asynchronous"]),
            PPOArgs(**p.ppo),
            Path(snakemake.output.summary).parent,
            catalogue.task_params,
            code_digest=source_digest(i.lib),
        )
        log.info("done: %s", result["last"])
