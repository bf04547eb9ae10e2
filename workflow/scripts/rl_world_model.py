"""Rule `rl_world_model`: PPO from the SFT policy in the action world model, from the initial states
of many scenes with their imagined goals, with the world model's general reward or a learned-reward
baseline (a killed job resumes)."""

from pathlib import Path

import torch

from roboscape.rl.in_world_model import initial_state_pool, train_in_world_model
from roboscape.rl.ppo import PPOArgs
from roboscape.rl.world_model_env import RewardConfig, WMEnvConfig
from roboscape.sim.catalogue import Catalogue
from roboscape.utils.io import read_json
from roboscape.utils.logs import job_log
from roboscape.utils.provenance import source_digest

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p, i = snakemake.params, snakemake.input
    scene_ids = None  # every in-domain scene of the group's tasks the world model trained on
    if p.reset_scenes == "policy":
        catalogue = Catalogue.from_json(read_json(i.scenes))
        scene_ids = [s.scene_id for s in catalogue.policy_scenes(snakemake.wildcards.group, p.train_scenes)]
    states = initial_state_pool(list(i.goals), i.instructions, scene_ids)
    log.info("%d initial states of %d scenes", len(states.scene_ids), len(set(states.scene_ids)))
    result = train_in_world_model(
        Path(i.init).parent,
        Path(i.world_model).parent,
        Path(i.tokenizer).parent,
        states,
        WMEnvConfig(**p.env),
        RewardConfig(**p.reward),
        PPOArgs(**p.ppo),
        Path(snakemake.output.summary).parent,
        reward_dir=Path(i.reward_model).parent if hasattr(i, "reward_model") else None,
        code_digest=source_digest(i.lib),
        device=p.device,
    )
    log.info("done: %s", result["last"])
