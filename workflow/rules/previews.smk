rule previews:
    """A GIF and a key-frame sheet of recorded trajectories per task, to look at."""
    input:
        lib=library("previews.py"),
        h5=lambda wc: expand(f"{OUT}/trajectories/{wc.task}/shard_{{shard}}.h5", shard=SHARDS),
        json=lambda wc: expand(f"{OUT}/trajectories/{wc.task}/shard_{{shard}}.json", shard=SHARDS),
    output:
        gif=report(f"{OUT}/previews/{{task}}.gif", caption=caption("previews"), category="1. Data",
                   subcategory="{task}", labels={"task": "{task}", "figure": "trajectories (GIF)"}),
        sheet=report(f"{OUT}/previews/{{task}}.png", caption=caption("previews"), category="1. Data",
                     subcategory="{task}", labels={"task": "{task}", "figure": "key frames"}),
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
