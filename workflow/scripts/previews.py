"""Rule `previews`: a GIF and a key-frame sheet of one task's recorded trajectories."""

from roboscape.report.previews import pick_episodes, write_gif, write_sheet
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    episodes = pick_episodes(snakemake.input.h5)
    write_gif(episodes, snakemake.output.gif)
    write_sheet(episodes, snakemake.output.sheet)
    log.info("previewed %d episodes", len(episodes))
