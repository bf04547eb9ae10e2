"""Rule `replay`: open-loop replay fidelity of the recorded optimal trajectories."""

from roboscape.sim.replay import replay_shard, summarise
from roboscape.utils.io import write_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    results = []
    for h5 in snakemake.input.h5:
        results += replay_shard(h5, labels=("optimal",), max_episodes=snakemake.params.max_episodes_per_shard)
    summary = summarise(results)
    write_json(snakemake.output[0], summary)
    log.info(
        "replay success rate %s over %d optimal episodes",
        summary["overall"]["replay_success_rate"],
        summary["overall"]["episodes"],
    )
