"""Rule `train_reward`: a learned-reward baseline for one task -- the embedding head on the frozen
action world model's hidden states, or the proxy CNN on frames -- with its held-out metrics
(resuming from the last checkpoint; several GPUs: accelerate launch)."""

from pathlib import Path

import torch

from roboscape.train.launch import launch_from_resources
from roboscape.train.reward_training import run_job
from roboscape.utils.io import read_json
from roboscape.utils.logs import job_log
from roboscape.utils.provenance import source_digest

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p, i, wc = snakemake.params, snakemake.input, snakemake.wildcards
    out_dir = Path(snakemake.output.metrics).parent
    spec = {
        "reward_model": {"kind": wc.kind, **p.arch},
        "data": {**p.data, "index": i.index, "task": wc.task},
        "train": dict(p.train),
        "out_dir": str(out_dir),
        "world_model": str(Path(i.world_model).parent) if wc.kind == "embedding" else None,
        "eval_items": p.eval_items,
        "cache_features": p.cache_features,
        "code_digest": source_digest(i.lib),
    }
    launch_from_resources(run_job, spec, out_dir / "job.json", snakemake.resources.gpu, snakemake.threads)
    log.info("held out: %s", read_json(snakemake.output.metrics))
