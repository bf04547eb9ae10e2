# The paper's tables from the evaluations, beside the paper's numbers.


rule table1:
    """Table 1: success rate per policy x method x task x domain with its interval and episode count,
    the paper's figure beside it, and each RL method against SFT with a clustered bootstrap."""
    input:
        lib=library("table1.py"),
        paper=os.path.relpath(f"{workflow.basedir}/workflow/resources/paper/table1.csv"),
        episodes=expand(f"{OUT}/policy/eval/{{method}}/episodes.csv", method=METHODS),
    output:
        csv=f"{OUT}/tables/table1.csv",
        md=report(f"{OUT}/tables/table1.md", caption=caption("table1"), category="0. Summary", labels={"figure": "Table 1"}),
        tex=f"{OUT}/tables/table1.tex",
    params:
        methods=METHODS,
        policy=POLICY["kind"],
        why_not_run="OpenVLA-7B runs with policy.kind: openvla, on GPUs with its weights (config/openvla.yaml)"
        if POLICY["kind"] == "mlp" else "this run's policy is OpenVLA (policy.kind: openvla); the MLP policy's rows run with policy.kind: mlp",
        bootstrap_samples=config["tables"]["bootstrap_samples"],
        seed=config["tables"]["seed"],
    log:
        f"{OUT}/logs/table1.log",
    benchmark:
        f"{OUT}/benchmarks/table1.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/table1.py"


TABLE2_METHODS = ["sft", "rl_maniskill", *([rlwm_method("general")] if "general" in RLWM["rewards"] else [])]


rule table2:
    """Table 2: the multi-task policy's success per task x object, each method beside the paper's,
    and each RL method's change against SFT (the paper's arrows) with a bootstrap test."""
    input:
        lib=library("table2.py"),
        paper=os.path.relpath(f"{workflow.basedir}/workflow/resources/paper/table2.csv"),
        scenes=f"{OUT}/scenes/scenes.json",
        **{f"episodes_{m}": expand(f"{OUT}/policy/eval/{m}/{MULTITASK}/run{{run}}/shard_{{shard}}.csv",
                                   run=method_runs(m), shard=EVAL_SHARDS) for m in TABLE2_METHODS},
    output:
        csv=f"{OUT}/tables/table2.csv",
        md=report(f"{OUT}/tables/table2.md", caption=caption("table2"), category="0. Summary", labels={"figure": "Table 2"}),
        tex=f"{OUT}/tables/table2.tex",
    params:
        methods=TABLE2_METHODS,
        policy=POLICY["kind"],
        scenes=f"{' and '.join(MULTITASK_CONFIG['objects'])} on the {MULTITASK_CONFIG['container']}, "
               f"{MULTITASK_CONFIG['table']} table (scenes.multitask)",
        bootstrap_samples=config["tables"]["bootstrap_samples"],
        seed=config["tables"]["seed"],
    log:
        f"{OUT}/logs/table2.log",
    benchmark:
        f"{OUT}/benchmarks/table2.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/table2.py"
