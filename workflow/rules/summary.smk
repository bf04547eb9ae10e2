SUMMARY_INPUTS = {
    "trajectories": f"{OUT}/trajectories/summary.json",
    "replay": f"{OUT}/trajectories/replay_fidelity.json",
    "clips": f"{OUT}/clips/summary.json",
    "tokenizer": f"{OUT}/tokenizer/eval.json",
    "tokenizer_finetuned": f"{OUT}/tokenizer/finetuned/eval.json",
    "wm_action": f"{OUT}/world_model/action/eval/eval.json",
    "wm_text": f"{OUT}/world_model/text/eval/eval.json",
    "controllability": f"{OUT}/world_model/action/controllability/controllability.json",
    "replay_policy_rate": f"{OUT}/trajectories/replay_fidelity_policy_rate.json",
    **{f"policy_{method}": f"{OUT}/policy/eval/{method}/summary.json" for method in METHODS},
    **{f"goals_{task}": f"{OUT}/rl/goals/{task}.json" for task in TASKS},
    **{f"reward_{kind}_{task}": f"{OUT}/rl/rewards/{kind}/{task}/metrics.json"
       for kind in RLWM["rewards"] if kind != "general" for task in LEARNED_REWARD_TASKS},
    **{f"validity_{task}": f"{OUT}/rl/rewards/validity/{task}.json" for task in TASKS},
    **drift_results(),
}


rule summary:
    """The tier's results as one Markdown page, from the stages' JSON files (the README's table)."""
    input:
        lib=library("summary.py"),
        **SUMMARY_INPUTS,
    output:
        report(f"{OUT}/summary.md", caption=caption("summary"), category="0. Summary", labels={"figure": "results tables"}),
    params:
        outdir=OUT,
        names=list(SUMMARY_INPUTS),
    log:
        f"{OUT}/logs/summary.log",
    benchmark:
        f"{OUT}/benchmarks/summary.tsv"
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/summary.py"
