# The paper's figures from the policies' evaluations in ManiSkill.
FIGURES = {"ind": ("Figure 4", "in domain"), "ood": ("Figure 5", "out of domain")}


ROLLOUT_CELLS = [[t, m] for t in TASKS for m in METHODS if t in method_tasks(m)]  # (task, method) evaluated


def first_shards(ext):
    """Every method's first evaluation shard of every task it runs, its first run's: its episodes or its frames."""
    return [f"{OUT}/policy/eval/{m}/{t}/run0/shard_000.{ext}" for t, m in ROLLOUT_CELLS]


rule figure_rollouts:
    """Figures 4 and 5: each task's first evaluation episode, every method side by side, in or out of domain."""
    input:
        lib=library("figure_rollouts.py"),
        episodes=first_shards("csv"),
        frames=first_shards("npz"),
    output:
        png=report(f"{OUT}/figures/rollouts_{{domain}}.png", caption=caption("figure_rollouts"), category="0. Summary",
                   subcategory="paper figures", labels={"figure": "evaluation rollouts", "domain": "{domain}"}),
        pdf=f"{OUT}/figures/rollouts_{{domain}}.pdf",
        gif=report(f"{OUT}/figures/rollouts_{{domain}}.gif", caption=caption("figure_rollouts"), category="0. Summary",
                   subcategory="paper figures", labels={"figure": "evaluation rollouts (GIF)", "domain": "{domain}"}),
    params:
        cells=ROLLOUT_CELLS,
        title=lambda wc: f"{FIGURES[wc.domain][0]}: evaluation episodes {FIGURES[wc.domain][1]}, each method from the same initial state",
    log:
        f"{OUT}/logs/figure_rollouts/{{domain}}.log",
    benchmark:
        f"{OUT}/benchmarks/figure_rollouts/{{domain}}.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    wildcard_constraints:
        domain="ind|ood",
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/figure_rollouts.py"


CURVES = EVAL["curves"]
RL_METHODS = [m for m in METHODS if m != "sft"]
if unknown := set(CURVES["tasks"]) - set(TASKS):
    raise ValueError(f"evaluation.curves.tasks {sorted(unknown)} are not among scenes.tasks {TASKS}")
# the figure is drawn when there is something to draw: tasks, and snapshots in both RL environments
SNAPSHOTS = (config["rl"]["maniskill"]["ppo"]["snapshots"], RLWM["ppo"]["snapshots"])
CURVE_FIGURE = [f"{OUT}/figures/learning_curves.{ext}" for ext in ("png", "pdf", "csv")] if CURVES["tasks"] and min(SNAPSHOTS) else []


rule eval_curve:
    """The points of Figure 2 for one RL run: each of its PPO snapshots closed loop in ManiSkill,
    in and out of domain."""
    input:
        lib=library("eval_curve.py"),
        scenes=f"{OUT}/scenes/scenes.json",
        instructions=f"{OUT}/policy/instructions.safetensors",
        snapshots=lambda wc: f"{policy_dir(wc.method, wc.task, wc.run)}/snapshots",
    output:
        f"{OUT}/policy/curves/{{method}}/{{task}}/run{{run}}.csv",
    params:
        train_scenes=POLICY["train_scenes"],
        env=sim_env(),
        episodes=CURVES["episodes"],
        seed=EVAL["seed"],
    log:
        f"{OUT}/logs/eval_curve/{{method}}_{{task}}_run{{run}}.log",
    benchmark:
        f"{OUT}/benchmarks/eval_curve/{{method}}_{{task}}_run{{run}}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10 + math.ceil(2 * (max(SNAPSHOTS) + 1) * CURVES["episodes"] * POLICY["episode_steps"] / 60),
        gpu=EVAL["gpus"],
    wildcard_constraints:
        method="|".join(RL_METHODS),
        task="|".join(TASKS),
        run=r"\d+",
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/eval_curve.py"


rule figure_learning_curves:
    """Figure 2: success rate in ManiSkill against environment steps and training time, per reward over its runs."""
    input:
        lib=library("figure_learning_curves.py"),
        curves=[f"{OUT}/policy/curves/{m}/{t}/run{r}.csv" for m in RL_METHODS for t in CURVES["tasks"] if t in method_tasks(m)
                for r in method_runs(m)],
    output:
        png=report(f"{OUT}/figures/learning_curves.png", caption=caption("figure_learning_curves"), category="0. Summary",
                   subcategory="paper figures", labels={"figure": "learning curves"}),
        pdf=f"{OUT}/figures/learning_curves.pdf",
        csv=f"{OUT}/figures/learning_curves.csv",
    log:
        f"{OUT}/logs/figure_learning_curves.log",
    benchmark:
        f"{OUT}/benchmarks/figure_learning_curves.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/figure_learning_curves.py"
