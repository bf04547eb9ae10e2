rule previews:
    """A GIF and a key-frame sheet of recorded trajectories per task, to look at."""
    input:
        library("report/previews.py", "report/rollout_figures.py", "data/trajectory_io.py", "utils/io.py"),
        h5=lambda wc: expand(f"{OUT}/trajectories/{wc.task}/shard_{{shard}}.h5", shard=SHARDS),
        json=lambda wc: expand(f"{OUT}/trajectories/{wc.task}/shard_{{shard}}.json", shard=SHARDS),
    output:
        gif=f"{OUT}/previews/{{task}}.gif",
        sheet=f"{OUT}/previews/{{task}}.png",
    log:
        f"{OUT}/logs/previews/{{task}}.log",
    benchmark:
        f"{OUT}/benchmarks/previews/{{task}}.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    wildcard_constraints:
        task="|".join(TASKS),
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/previews.py"
