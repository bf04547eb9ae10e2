"""Rule `trajectories`: MPLib optimal, suboptimal and exploratory trajectories of one (task, shard)."""

from roboscape.sim.catalogue import Catalogue
from roboscape.sim.generator import GeneratorConfig
from roboscape.sim.shard import generate_shard
from roboscape.utils.io import read_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    p = snakemake.params
    catalogue = Catalogue.from_json(read_json(snakemake.input.scenes))
    cfg = GeneratorConfig(**p.generator, seed=p.seed)
    summary = generate_shard(
        catalogue,
        snakemake.wildcards.task,
        int(snakemake.wildcards.shard),
        p.scenes_per_shard,
        cfg,
        snakemake.output.h5,
        snakemake.output.json,
        snakemake.output.summary,
        compression=p.compression,
    )
    log.info(
        "kept %s, failed attempts %s, %.1f trajectories/min",
        summary["kept"],
        summary["failed_attempts_by_cause"],
        summary["trajectories_per_minute"] or 0,
    )
