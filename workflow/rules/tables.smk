# The paper's tables from the evaluations, beside the paper's numbers.


rule table1:
    """Table 1: success rate per policy x method x task x domain with its interval and episode count,
    the paper's figure beside it, and each RL method against SFT with a clustered bootstrap."""
    input:
        lib=library("table1.py"),
        paper=f"{workflow.basedir}/workflow/resources/paper/table1.csv",
        episodes=expand(f"{OUT}/policy/eval/{{method}}/episodes.csv", method=METHODS),
    output:
        csv=f"{OUT}/tables/table1.csv",
        md=report(f"{OUT}/tables/table1.md", caption=caption("table1"), category="0. Summary", labels={"figure": "Table 1"}),
        tex=f"{OUT}/tables/table1.tex",
    params:
        methods=METHODS,
        policy=POLICY["kind"],
        why_not_run=f"the OpenVLA-7B policy is not part of this pipeline yet (policy.kind: {POLICY['kind']})",
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
