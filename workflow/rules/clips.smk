rule clips:
    """Fixed-length clips with done labels from one trajectory shard."""
    input:
        lib=library("clips.py"),
        h5=f"{OUT}/trajectories/{{task}}/shard_{{shard}}.h5",
        json=f"{OUT}/trajectories/{{task}}/shard_{{shard}}.json",
    output:
        h5=f"{OUT}/clips/{{task}}/shard_{{shard}}.h5",
        index=f"{OUT}/clips/{{task}}/shard_{{shard}}.csv",
    params:
        clip_length=config["clips"]["clip_length"],
        stride=config["clips"]["stride"],
        fps=GENERATOR["control_freq"],
        views=config["clips"]["views"],
        compression=config["clips"]["compression"],
    log:
        f"{OUT}/logs/clips/{{task}}_{{shard}}.log",
    benchmark:
        f"{OUT}/benchmarks/clips/{{task}}_{{shard}}.tsv"
    resources:
        mem_mb=3000,
        runtime=30,
    wildcard_constraints:
        task="|".join(TASKS),
        shard=r"\d{3}",
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/clips.py"


rule clip_index:
    """One index over every clip shard (what the world models' Dataset reads)."""
    input:
        lib=library("clip_index.py"),
        h5=shard_files("clips"),
        parts=shard_files("clips", "csv"),
    output:
        index=f"{OUT}/clips/index.csv",
        summary=f"{OUT}/clips/summary.json",
    log:
        f"{OUT}/logs/clip_index.log",
    benchmark:
        f"{OUT}/benchmarks/clip_index.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/clip_index.py"
