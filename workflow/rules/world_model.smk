rule encode_instructions:
    """Every distinct instruction encoded once by the text encoder (the text WM's control)."""
    input:
        TEXT_ENCODER_LIB,
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
            arch=WM_ARCH,
            data=wm_data(_control),
            train=WM[_control]["train"],
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


rule eval_wm:
    """Held-out evaluation of one world model: teacher-forced, open loop against the floors, done
    signal, controllability strips and GIFs."""
    input:
        WM_EVAL_LIB,
        unpack(lambda wc: {"instructions": f"{OUT}/world_model/instructions.safetensors"} if wc.control == "text" else {}),
        model=f"{OUT}/world_model/{{control}}/model/model.safetensors",
        tokenizer=f"{OUT}/tokenizer/finetuned/model/model.safetensors",
        token_index=f"{OUT}/tokens/index.csv",
        clip_index=f"{OUT}/clips/index.csv",
    output:
        eval=f"{OUT}/world_model/{{control}}/eval/eval.json",
    params:
        data=lambda wc: wm_data(wc.control),
        eval=WM["eval"],
        view=config["tokenizer"]["view"],
        perceptual_backend=config["tokenizer"]["perceptual_backend"],
    log:
        f"{OUT}/logs/eval_wm_{{control}}.log",
    benchmark:
        f"{OUT}/benchmarks/eval_wm_{{control}}.tsv"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
    wildcard_constraints:
        control="action|text",
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/eval_wm.py"
