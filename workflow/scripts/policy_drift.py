"""Rule `policy_drift`: a policy's episodes in the action world model, as RL w. World Model runs
them, replayed in ManiSkill from the same held-out start states: how far the frames drift, and
whether the done signal fires where the simulator counts success."""

from pathlib import Path

import torch

from roboscape.data.heldout_episodes import SUBSETS, load_trajectories
from roboscape.eval.controllability import pick_start_episodes
from roboscape.eval.policy_drift import DriftConfig, measure_drift
from roboscape.models.perceptual import PerceptualDistance
from roboscape.models.text_encoder import load_sentences
from roboscape.models.tokenizer import Tokenizer
from roboscape.models.world_model import WorldModel
from roboscape.policy.loading import load_policy
from roboscape.report.world_model_figures import drift_comparison, drift_figure
from roboscape.sim.catalogue import Catalogue, instruction
from roboscape.sim.policy_env import PolicyEnv
from roboscape.utils.io import read_json, write_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p, i, o, w = snakemake.params, snakemake.input, snakemake.output, snakemake.wildcards
    cfg = DriftConfig(**p.cfg)
    if p.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("policy_drift was given a GPU (evaluation.drift.resources.gpus), but this machine has none")
    catalogue = Catalogue.from_json(read_json(i.scenes))
    episodes = load_trajectories(
        i.h5, i.token_index, p.heldout_every, p.env["frame_skip"], p.view, first_frame_only=True
    )
    episodes = [e for e in episodes if catalogue.scene(e.scene_id).task == w.task]
    starts = {subset: pick_start_episodes(episodes, subset, cfg.start_states) for subset in SUBSETS}
    scenes = {e.scene_id: catalogue.scene(e.scene_id) for subset in starts.values() for e in subset}
    instructions = {k: v.numpy() for k, v in load_sentences(i.instructions).items()}
    env = PolicyEnv(
        list(scenes.values()),
        instructions,
        task_params=catalogue.task_params,
        terminate_on_success=False,
        episode_steps=cfg.horizon,
        **p.env,
    )
    policy = load_policy(Path(i.policy).parent, p.device).eval()
    policy.check_space(env.observation_space)
    try:
        result, media = measure_drift(
            policy,
            WorldModel.from_pretrained(Path(i.world_model).parent, p.device),
            Tokenizer.from_pretrained(Path(i.tokenizer).parent, p.device),
            env,
            starts,
            {k: instructions[instruction(s, catalogue.task_params)] for k, s in scenes.items()},
            cfg,
            PerceptualDistance(p.perceptual_backend),
        )
    finally:
        env.close()
    result.update(method=w.method, task=w.task)
    write_json(o.result, result)
    drift_figure(result, o.curves, f"{w.method} policy of {w.task} in the action world model against ManiSkill")
    for subset in SUBSETS:
        drift_comparison(result, media, subset, o[f"{subset}_png"], o[f"{subset}_gif"])
        block = result["subsets"][subset]
        log.info(
            "%s: perceptual margin over copying the first frame %.4f (first half %.4f, second %.4f); "
            "solved by the world model %d, the simulator %d, both %d of %d",
            subset,
            block["frames"]["margin_over_floor"]["copy_first_frame"]["perceptual"],
            block["halves"]["first"]["margin_over_floor"]["copy_first_frame"]["perceptual"],
            block["halves"]["second"]["margin_over_floor"]["copy_first_frame"]["perceptual"],
            block["done_against_success"]["world_model_success_once"],
            block["done_against_success"]["simulator_success_once"],
            block["done_against_success"]["both"],
            block["done_against_success"]["episodes"],
        )
