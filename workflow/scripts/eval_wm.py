"""Rule `eval_wm`: evaluate one world model on held-out in-domain and out-of-domain clips."""

from pathlib import Path

import torch

from roboscape.eval.world_model_eval import EvalConfig, evaluate_world_model
from roboscape.train.world_model_training import WorldModelData
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p, i = snakemake.params, snakemake.input
    data = WorldModelData(token_index=i.token_index, instruction_cache=i.get("instructions"), **p.data)
    result = evaluate_world_model(Path(i.model).parent, Path(i.tokenizer).parent, data, i.clip_index,
                                  Path(snakemake.output.eval).parent, EvalConfig(**p.eval), p.view, p.perceptual_backend)
    for subset in ("heldout", "ood"):
        log.info("%s: teacher-forced %s; open-loop margin over the floor %s", subset,
                 result[subset]["teacher_forced"], result[subset]["open_loop"]["margin_over_floor"])
