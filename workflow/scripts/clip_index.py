"""Rule `clip_index`: one index over all clip shards, plus counts."""

from roboscape.data.clips import merge_indices
from roboscape.utils.io import write_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    index = merge_indices(list(zip(snakemake.input.parts, snakemake.input.h5, strict=True)), snakemake.output.index)
    summary = {
        "clips": len(index),
        "by_task": index.groupby("task").size().to_dict(),
        "by_split": index.groupby("split").size().to_dict(),
        "by_label": index.groupby("label").size().to_dict(),
    }
    write_json(snakemake.output.summary, summary)
    log.info("%s", summary)
