rule trajectories:
    """MPLib optimal, suboptimal and exploratory trajectories of one (task, shard) of scenes, rendered and recorded."""
    input:
        lib=library("trajectories.py"),
        scenes=f"{OUT}/scenes/scenes.json",
    output:
        h5=f"{OUT}/trajectories/{{task}}/shard_{{shard}}.h5",
        json=f"{OUT}/trajectories/{{task}}/shard_{{shard}}.json",
        summary=f"{OUT}/trajectories/{{task}}/shard_{{shard}}.summary.json",
    params:
        scenes_per_shard=config["trajectories"]["scenes_per_shard"],
        generator=GENERATOR,
        compression=config["trajectories"]["compression"],
        seed=config["seed"],
    log:
        f"{OUT}/logs/trajectories/{{task}}_{{shard}}.log",
    benchmark:
        f"{OUT}/benchmarks/trajectories/{{task}}_{{shard}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=lambda wc: 10 + math.ceil(
            config["trajectories"]["scenes_per_shard"]
            * (GENERATOR["n_optimal"] + GENERATOR["n_suboptimal"] + GENERATOR["n_exploratory"])
            * config["trajectories"]["resources"]["runtime_per_trajectory_s"] / 60
        ),
    wildcard_constraints:
        task="|".join(TASKS),
        shard=r"\d{3}",
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/trajectories.py"


rule trajectory_summary:
    """Totals over all shards: kept trajectories, failures by cause, throughput."""
    input:
        lib=library("trajectory_summary.py"),
        summaries=trajectory_shards("summary.json"),
    output:
        f"{OUT}/trajectories/summary.json",
    log:
        f"{OUT}/logs/trajectory_summary.log",
    benchmark:
        f"{OUT}/benchmarks/trajectory_summary.tsv"
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/trajectory_summary.py"


rule replay:
    """Replay fidelity: recorded optimal actions replayed open loop must solve the task again."""
    input:
        lib=library("replay.py"),
        h5=trajectory_shards("h5"),
        json=trajectory_shards("json"),
    output:
        f"{OUT}/trajectories/replay_fidelity.json",
    params:
        max_episodes_per_shard=config["replay"]["max_episodes_per_shard"],
        frame_skip=1,  # the control rate: the recorded actions as they are
    log:
        f"{OUT}/logs/replay.log",
    benchmark:
        f"{OUT}/benchmarks/replay.tsv"
    resources:
        mem_mb=3000,
        runtime=60,
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/replay.py"
