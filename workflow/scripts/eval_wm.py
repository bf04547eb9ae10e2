"""Rules `eval_wm_action` and `eval_wm_text`: evaluate one world model on held-out in-domain and
out-of-domain clips, and draw its rollouts (and, for the action WM, its controllability)."""

from pathlib import Path

import torch

from roboscape.data.token_windows import WorldModelData
from roboscape.eval.world_model_eval import EvalConfig, evaluate_world_model
from roboscape.report.world_model_figures import controllability_figures, subset_figures
from roboscape.utils.io import write_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p, i, o = snakemake.params, snakemake.input, snakemake.output
    data = WorldModelData(token_index=i.token_index, instruction_cache=i.get("instructions"), **p.data)
    result, media = evaluate_world_model(
        Path(i.model).parent,
        Path(i.tokenizer).parent,
        data,
        i.clip_index,
        EvalConfig(**p.eval),
        p.view,
        p.perceptual_backend,
    )
    write_json(o.eval, result)
    for subset in ("heldout", "ood"):
        subset_figures(
            result["control"],
            subset,
            media[subset],
            result[subset]["open_loop"]["sampling"],
            o[f"{subset}_horizon"],
            o[f"{subset}_rollouts_png"],
            o[f"{subset}_rollouts_gif"],
        )
        log.info(
            "%s: teacher-forced %s; open-loop margin over the floor %s",
            subset,
            result[subset]["teacher_forced"],
            result[subset]["open_loop"]["margin_over_floor"],
        )
    if "controllability" in media:
        controllability_figures(media["controllability"], o.controllability_png, o.controllability_gif)
