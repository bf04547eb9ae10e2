"""Rule `sft`: behaviour cloning of the planner's trajectories in one policy group's training scenes
(a task's, or Table 2's multi-task scenes), at the policy's rate (resuming from the last checkpoint;
several GPUs: accelerate launch)."""

from pathlib import Path

import torch

from roboscape.sim.catalogue import Catalogue
from roboscape.train.launch import launch_from_resources
from roboscape.train.sft import run_job
from roboscape.utils.io import read_json
from roboscape.utils.logs import job_log
from roboscape.utils.provenance import source_digest

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p, i = snakemake.params, snakemake.input
    catalogue = Catalogue.from_json(read_json(i.scenes))
    scenes = catalogue.policy_scenes(snakemake.wildcards.group, p.train_scenes)
    out_dir = Path(snakemake.output.summary).parent
    spec = {
        "policy": dict(p.policy),
        "data": {
            "trajectories": list(i.h5),
            "scene_ids": [s.scene_id for s in scenes],
            "labels": list(p.labels),
            "frame_skip": p.frame_skip,
            "instructions": i.instructions,
        },
        "train": dict(p.train),
        "augment_shift": p.augment_shift,
        "out_dir": str(out_dir),
        "code_digest": source_digest(i.lib),
    }
    launch_from_resources(run_job, spec, out_dir / "job.json", snakemake.resources.gpu, snakemake.threads)
    log.info("done: %s", read_json(snakemake.output.summary)["final"])
