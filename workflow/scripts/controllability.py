"""Rule `controllability`: the action world model against the simulator under hand-made and
recorded action sequences, from held-out and out-of-domain start states (Figure 9, measured)."""

from pathlib import Path

import torch

from roboscape.data.heldout_episodes import SUBSETS, load_trajectories
from roboscape.eval.controllability import ControllabilityConfig, measure, pick_start_episodes
from roboscape.models.perceptual import PerceptualDistance
from roboscape.models.text_encoder import load_sentences
from roboscape.models.tokenizer import Tokenizer
from roboscape.models.world_model import WorldModel
from roboscape.report.world_model_figures import margin_bars, simulator_comparison
from roboscape.sim.catalogue import Catalogue
from roboscape.sim.policy_env import PolicyEnv
from roboscape.utils.io import read_json, write_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p, i, o = snakemake.params, snakemake.input, snakemake.output
    cfg = ControllabilityConfig(**p.cfg)
    episodes = load_trajectories(
        i.h5, i.token_index, p.heldout_every, p.env["frame_skip"], p.view, first_frame_only=True
    )
    starts = {subset: pick_start_episodes(episodes, subset, cfg.start_states) for subset in SUBSETS}
    catalogue = Catalogue.from_json(read_json(i.scenes))
    scenes = [catalogue.scene(e.scene_id) for subset in starts.values() for e in subset]
    instructions = {k: v.numpy() for k, v in load_sentences(i.instructions).items()}
    env = PolicyEnv(
        scenes,
        instructions,
        task_params=catalogue.task_params,
        terminate_on_success=False,
        episode_steps=cfg.horizon,  # a sequence is an episode
        **p.env,
    )
    try:
        result, media = measure(
            WorldModel.from_pretrained(Path(i.world_model).parent),
            Tokenizer.from_pretrained(Path(i.tokenizer).parent),
            env,
            starts,
            cfg,
            PerceptualDistance(p.perceptual_backend),
        )
    finally:
        env.close()
    write_json(o.result, result)
    margin_bars(result, o.margins)
    for subset in SUBSETS:
        simulator_comparison(result, media, subset, o[f"{subset}_png"], o[f"{subset}_gif"])
        block = result["subsets"][subset]
        log.info(
            "%s: against the tokenized copy floor (perceptual, 95%%): %s; opposite extremes WM/sim %s",
            subset,
            block["perceptual_versus_floor_95"]["copy_first_frame_tokenized"],
            block["opposite_extremes"]["ratio"],
        )
