rule encode_instructions:
    """Every distinct instruction encoded once by the text encoder (the text WM's control)."""
    input:
        lib=library("encode_instructions.py"),
        index=f"{OUT}/clips/index.csv",
    output:
        f"{OUT}/world_model/instructions.safetensors",
    params:
        backend=WM["text_encoder"],
    log:
        f"{OUT}/logs/encode_instructions.log",
    benchmark:
        f"{OUT}/benchmarks/encode_instructions.tsv"
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/encode_instructions.py"


def eval_wm_figures(control):
    """The figures rule eval_wm_<control> makes (output name -> file in the report): per held-out
    subset, the error against the horizon and the rollouts against ground truth (PNG and GIF);
    for the action WM, its controllability under extreme actions (Fig. 9)."""
    figures = {"horizon": ("horizon.png", "error against the horizon"),
               "rollouts_png": ("rollouts.png", "rollouts against ground truth"),
               "rollouts_gif": ("rollouts.gif", "rollouts against ground truth (GIF)")}
    named = {f"{subset}_{key}": (f"{subset}_{file}", f"wm_{file.split('.')[0]}", f"{subset}: {what}")
             for subset in ("heldout", "ood") for key, (file, what) in figures.items()}
    if control == "action":
        named |= {f"controllability_{ext}": (f"controllability.{ext}", "wm_controllability", "controllability under extreme actions")
                  for ext in ("png", "gif")}
    return {key: report(f"{OUT}/world_model/{control}/eval/{file}", caption=caption(rst), category="3. World models",
                        subcategory=f"{control} world model", labels={"model": control, "figure": what})
            for key, (file, rst, what) in named.items()}


for _control in ("action", "text"):

    rule:
        name:
            f"train_wm_{_control}"
        input:
            **wm_training_inputs(_control),
        output:
            weights=f"{OUT}/world_model/{_control}/model/model.safetensors",
            config=f"{OUT}/world_model/{_control}/model/config.json",
            summary=f"{OUT}/world_model/{_control}/train.json",
        params:
            control=_control,
            arch={**WM["arch"], "episode_clock": WM[_control]["episode_clock"]},
            data=wm_data(_control),
            train=WM[_control]["train"],
            changed_token_weight=WM[_control]["changed_token_weight"],
            dropout=WM["guidance"][f"{_control}_dropout"],
        log:
            f"{OUT}/logs/train_wm_{_control}.log",
        benchmark:
            f"{OUT}/benchmarks/train_wm_{_control}.tsv"
        threads: WM[_control]["resources"]["cpus"]
        resources:
            mem_mb=WM[_control]["resources"]["mem_mb"],
            runtime=WM[_control]["resources"]["runtime"],
            gpu=WM[_control]["resources"]["gpus"],
        conda:
            "../../envs/roboscape.yaml"
        script:
            "../scripts/train_world_model.py"

    rule:
        """Held-out evaluation of one world model: teacher-forced, open loop against the floors, done
        signal; figures of the rollouts and, for the action WM, of its controllability (Fig. 9)."""
        name:
            f"eval_wm_{_control}"
        input:
            lib=library("eval_wm.py"),
            **({"instructions": f"{OUT}/world_model/instructions.safetensors"} if _control == "text" else {}),
            model=f"{OUT}/world_model/{_control}/model/model.safetensors",
            tokenizer=f"{OUT}/tokenizer/finetuned/model/model.safetensors",
            token_index=f"{OUT}/tokens/index.csv",
            clip_index=f"{OUT}/clips/index.csv",
        output:
            eval=f"{OUT}/world_model/{_control}/eval/eval.json",
            **eval_wm_figures(_control),
        params:
            data=wm_data(_control),
            eval={**WM["eval"], **(ROLLOUT if _control == "action" else {})},
            view=TOKENIZER["run"]["view"],
            perceptual_backend=TOKENIZER["run"]["perceptual_backend"],
        log:
            f"{OUT}/logs/eval_wm_{_control}.log",
        benchmark:
            f"{OUT}/benchmarks/eval_wm_{_control}.tsv"
        threads: 2
        resources:
            mem_mb=6000,
            runtime=60,
        conda:
            "../../envs/roboscape.yaml"
        script:
            "../scripts/eval_wm.py"
