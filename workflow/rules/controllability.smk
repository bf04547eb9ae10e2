# The action world model against the simulator under the policy's kind of actions (Figure 9, measured).


def controllability_figures():
    """The figures rule controllability makes (output name -> file in the report)."""
    named = {"margins": ("margins.png", "controllability_margins", "margin over the copy floor per sequence")}
    for subset in ("heldout", "ood"):
        named[f"{subset}_png"] = (f"{subset}.png", "controllability_strips", f"{subset}: simulator | world model")
        named[f"{subset}_gif"] = (f"{subset}.gif", "controllability_strips", f"{subset}: simulator | world model (GIF)")
    return {key: report(f"{OUT}/world_model/action/controllability/{file}", caption=caption(rst), category="3. World models",
                        subcategory="controllability against the simulator", labels={"figure": what})
            for key, (file, rst, what) in named.items()}


rule controllability:
    """Hand-made and recorded action sequences from held-out and out-of-domain start states, in
    ManiSkill and in the action world model: per-step scores against the simulator next to the
    copy-first-frame floor, and how far apart opposite extremes end."""
    input:
        lib=library("controllability.py"),
        scenes=f"{OUT}/scenes/scenes.json",
        instructions=f"{OUT}/policy/instructions.safetensors",
        token_index=f"{OUT}/tokens/index.csv",
        h5=trajectory_shards("h5"),
        world_model=f"{OUT}/world_model/action/model/model.safetensors",
        tokenizer=f"{OUT}/tokenizer/finetuned/model/model.safetensors",
    output:
        result=f"{OUT}/world_model/action/controllability/controllability.json",
        **controllability_figures(),
    params:
        cfg={**{k: v for k, v in WM["controllability"].items() if k != "resources"}, **ROLLOUT},
        env={k: v for k, v in sim_env().items() if k != "episode_steps"},  # an episode: the sequence
        heldout_every=WM["data"]["heldout_every"],
        view=TOKENIZER["run"]["view"],
        perceptual_backend=TOKENIZER["run"]["perceptual_backend"],
    log:
        f"{OUT}/logs/controllability.log",
    benchmark:
        f"{OUT}/benchmarks/controllability.tsv"
    threads: WM["controllability"]["resources"]["cpus"]
    resources:
        mem_mb=WM["controllability"]["resources"]["mem_mb"],
        runtime=WM["controllability"]["resources"]["runtime"],
        gpu=WM["controllability"]["resources"]["gpus"],
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/controllability.py"


DRIFT = EVAL["drift"]


def drift_results():
    """policy_drift's results, by name (drift_<method>_<task>): every configured method's policy of
    every configured task it trains."""
    return {f"drift_{method}_{task}": f"{OUT}/world_model/action/drift/{method}/{task}.json"
            for method in DRIFT["methods"] for task in DRIFT["tasks"] if task in method_tasks(method)}


if unknown := {m for m in DRIFT["methods"] if m not in METHODS}:
    raise ValueError(f"config fails validation: evaluation.drift.methods: {sorted(unknown)} are not trained (an RL w. "
                     f"World Model method needs its reward in rl.world_model.rewards)")


rule policy_drift:
    """A policy's episodes in the action world model as RL w. World Model runs them, replayed in
    ManiSkill from the same held-out start states: how far the frames drift from the simulator's
    over an episode, and whether the world model's done signal fires where the simulator counts
    the task solved."""
    input:
        lib=library("policy_drift.py"),
        scenes=f"{OUT}/scenes/scenes.json",
        instructions=f"{OUT}/policy/instructions.safetensors",
        token_index=f"{OUT}/tokens/index.csv",
        h5=lambda wc: group_trajectories(wc.task, "h5"),
        world_model=f"{OUT}/world_model/action/model/model.safetensors",
        tokenizer=f"{OUT}/tokenizer/finetuned/model/model.safetensors",
        policy=lambda wc: f"{policy_dir(wc.method, wc.task, 0)}/model/model.safetensors",  # an RL method's first run
    output:
        result=f"{OUT}/world_model/action/drift/{{method}}/{{task}}.json",
        curves=report(f"{OUT}/world_model/action/drift/{{method}}/{{task}}.png", caption=caption("policy_drift"),
                      category="3. World models", subcategory="drift along the policy's episodes",
                      labels={"method": "{method}", "task": "{task}", "figure": "per step"}),
        **{f"{subset}_{ext}": report(f"{OUT}/world_model/action/drift/{{method}}/{{task}}_{subset}.{ext}",
                                     caption=caption("policy_drift_strips"), category="3. World models",
                                     subcategory="drift along the policy's episodes",
                                     labels={"method": "{method}", "task": "{task}", "figure": f"{subset} {ext}"})
           for subset in ("heldout", "ood") for ext in ("png", "gif")},
    params:
        # the world model as RL w. World Model's environment runs it (greedy, its decoder and rollout settings)
        cfg={"start_states": DRIFT["start_states"], "horizon": POLICY["episode_steps"],
             "done_threshold": RLWM["done_threshold"], "decoder": RLWM["decoder"], **ROLLOUT},
        env={k: v for k, v in sim_env().items() if k != "episode_steps"},
        heldout_every=WM["data"]["heldout_every"],
        view=TOKENIZER["run"]["view"],
        perceptual_backend=TOKENIZER["run"]["perceptual_backend"],
        device="cuda" if DRIFT["resources"]["gpus"] else "cpu",  # the policy and the world model
    log:
        f"{OUT}/logs/policy_drift/{{method}}_{{task}}.log",
    benchmark:
        f"{OUT}/benchmarks/policy_drift/{{method}}_{{task}}.tsv"
    threads: DRIFT["resources"]["cpus"]
    resources:
        mem_mb=DRIFT["resources"]["mem_mb"],
        runtime=DRIFT["resources"]["runtime"],
        gpu=DRIFT["resources"]["gpus"],
    wildcard_constraints:
        method="|".join(METHODS),
        task="|".join(TASKS),
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/policy_drift.py"
