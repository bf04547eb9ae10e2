"""Rule `clips`: cut one trajectory shard into fixed-length clips with done labels."""

from roboscape.data.clips import ClipConfig, cut_clips
from roboscape.utils.io import atomic_path
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    p = snakemake.params
    cfg = ClipConfig(
        clip_length=p.clip_length, stride=p.stride, fps=p.fps, views=tuple(p.views), compression=p.compression
    )
    index, summary = cut_clips(snakemake.input.h5, snakemake.output.h5, cfg)
    with atomic_path(snakemake.output.index) as tmp:
        index.to_csv(tmp, index=False)
    log.info("%s", summary)
