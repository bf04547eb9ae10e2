"""Rule `imagine_goals`: the text world model's goal for every recorded initial state of a task's
scenes with data (Eq. 6), its fidelity against the planner's final frames, and a sheet to look at."""

from pathlib import Path

import torch

from roboscape.models.control import TextControl
from roboscape.models.perceptual import PerceptualDistance
from roboscape.models.text_encoder import load_instruction_cache
from roboscape.models.tokenizer import Tokenizer
from roboscape.models.world_model import WorldModel
from roboscape.report.goal_figures import goal_sheet
from roboscape.rl.goals import GoalConfig, goal_fidelity, imagine_goals, initial_states, write_goals
from roboscape.utils.io import read_json, write_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p, i, o = snakemake.params, snakemake.input, snakemake.output
    cfg = GoalConfig(**p.goals)
    scenes = read_json(i.scenes)["selected"][snakemake.wildcards.task]
    states = initial_states(i.h5, scenes, view=p.view)
    rows, token_states, mask = load_instruction_cache(i.instructions)
    text_wm = WorldModel.from_pretrained(Path(i.text_wm).parent)
    tokenizer = Tokenizer.from_pretrained(Path(i.tokenizer).parent)
    goals = imagine_goals(text_wm, tokenizer, TextControl(token_states, mask), rows, states, cfg)
    write_goals(goals, o.goals, cfg)
    fidelity = goal_fidelity(goals, PerceptualDistance(p.perceptual_backend))
    meta = {"task": snakemake.wildcards.task, "config": p.goals, "perceptual_backend": p.perceptual_backend}
    write_json(o.fidelity, {**meta, **fidelity})
    goal_sheet(goals, o.sheet)
    log.info("%s", fidelity)
