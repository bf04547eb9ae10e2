rule scenes:
    """The scene catalogue (80 scenes per task), the ID/OOD split and the selected scenes."""
    input:
        lib=library("scenes.py"),
    output:
        f"{OUT}/scenes/scenes.json",
    params:
        split_seed=config["scenes"]["split_seed"],
        tasks=TASKS,
        n_ind=config["scenes"]["n_ind"],
        n_ood=config["scenes"]["n_ood"],
        n_ood_objects=config["scenes"]["n_ood_objects"],
        n_ood_pairs=config["scenes"]["n_ood_pairs"],
        multitask=MULTITASK_SCENES,
        task_params=config["scenes"]["task_params"],
    log:
        f"{OUT}/logs/scenes.log",
    benchmark:
        f"{OUT}/benchmarks/scenes.tsv"
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/scenes.py"
