"""Rules `replay` and `replay_policy_rate`: open-loop replay fidelity of the recorded optimal
trajectories, at the control rate or at the policy's rate (frame_skip control steps per action)."""

from roboscape.sim.replay import replay_shard, summarise
from roboscape.utils.io import write_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    p = snakemake.params
    results = []
    for h5 in snakemake.input.h5:
        results += replay_shard(h5, labels=("optimal",), max_episodes=p.max_episodes_per_shard, frame_skip=p.frame_skip)
    summary = {**summarise(results), "frame_skip": p.frame_skip}
    write_json(snakemake.output[0], summary)
    log.info(
        "replay success rate %s over %d optimal episodes (%d control steps per action)",
        summary["overall"]["replay_success_rate"],
        summary["overall"]["episodes"],
        p.frame_skip,
    )
