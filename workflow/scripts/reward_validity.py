"""Rule `reward_validity`: every reward RL in the world model can use, scored along a task's held-out
in-domain and out-of-domain planner trajectories -- its value order and its agreement with the
simulator's reward (the paper's Figure 3 as numbers), and the figure; and the general reward's
sparse term from the same start states with the arm held, in the world model and in ManiSkill."""

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from roboscape.data.heldout_episodes import load_trajectories
from roboscape.models.reward_models import RewardModel
from roboscape.models.text_encoder import load_sentences
from roboscape.models.tokenizer import Tokenizer
from roboscape.models.world_model import WorldModel
from roboscape.report.reward_figures import reward_curves
from roboscape.rl.goals import read_goals
from roboscape.rl.reward_validity import (
    HELD_ARM_STATES,
    REAL_GOAL,
    Rewards,
    held_arm,
    per_frame,
    score,
    start_states,
    validity,
)
from roboscape.rl.world_model_env import GeneralReward, RewardConfig, WMEnvConfig
from roboscape.sim.catalogue import Catalogue
from roboscape.sim.policy_env import PolicyEnv
from roboscape.utils.io import atomic_path, read_json, write_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p, i, o, task = snakemake.params, snakemake.input, snakemake.output, snakemake.wildcards.task
    trajectories = load_trajectories(i.h5, i.token_index, p.heldout_every, p.frame_skip, p.view)
    goals = read_goals(i.goals)
    learned = {
        kind: RewardModel.from_pretrained(Path(i[kind]).parent) for kind in ("embedding", "proxy") if kind in p.rewards
    }
    rewards = Rewards(
        WorldModel.from_pretrained(Path(i.world_model).parent),
        Tokenizer.from_pretrained(Path(i.tokenizer).parent),
        general=GeneralReward(RewardConfig(**p.reward), num_envs=1) if "general" in p.rewards else None,
        goals={(s, f.tobytes()): g for s, f, g in zip(goals["scene_id"], goals["initial"], goals["goal"], strict=True)},
        done_steps=p.env["done_steps"],
        **learned,
    )
    scores = [score(t, rewards) for t in tqdm(trajectories, desc=f"reward validity {task}", mininterval=10)]
    frames = per_frame(trajectories, scores)
    names = ["rule", *(n for r in p.rewards for n in ([r, REAL_GOAL] if r == "general" else [r]))]
    with atomic_path(o.frames) as tmp:
        frames.to_csv(tmp, index=False)
    result = {"task": task, "frame_skip": p.frame_skip, "reward": p.reward, **validity(frames, names)}
    starts = start_states(trajectories, HELD_ARM_STATES)
    catalogue = Catalogue.from_json(read_json(i.scenes))
    env = PolicyEnv(
        [catalogue.scene(e.scene_id) for subset in starts.values() for e in subset],
        {k: v.numpy() for k, v in load_sentences(i.instructions).items()},
        task_params=catalogue.task_params,
        terminate_on_success=False,
        **p.sim,
    )

    def solved(episode, actions: np.ndarray) -> bool:
        """Whether ManiSkill solves the episode's task at any step under ``actions``, from its start state."""
        env.reset(options={"scene": episode.scene_id, "episode_seed": episode.episode_seed})
        return any(bool(env.step(a)[4]["success"]) for a in actions)

    try:
        result["held_arm"] = held_arm(
            rewards.world_model,
            rewards.tokenizer,
            starts,
            WMEnvConfig(**p.env),
            p.reward["sparse_threshold"],
            np.concatenate([t.actions for t in trajectories]).std(0),
            solved,
            p.jitter,
        )
    finally:
        env.close()
    write_json(o.validity, result)
    reward_curves(frames, names, o.figure, task)
    log.info("%s", {k: v for k, v in result.items() if k != "held_arm"})  # held_arm: a line per kind below
    for kind, subsets in result["held_arm"]["kinds"].items():
        for subset, r in subsets.items():
            log.info(
                "%s, arm %s: the done signal passed %.2f in %d of %d episodes (first at step %s); ManiSkill solved %d",
                subset,
                kind,
                p.reward["sparse_threshold"],
                r["done_passed"],
                r["start_states"],
                r["first_step_mean"],
                r["solved_in_simulator"],
            )
