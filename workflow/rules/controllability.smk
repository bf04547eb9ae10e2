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
