# The model and run options of stage one (stage two reads the same run options, and its own).
TOKENIZER_OPTIONS = {k: v for k, v in config["tokenizer"].items()
                     if k not in ("train", "decoder_train", "decoder_context", "resources")}


rule train_tokenizer:
    """The MAGVIT-2-style tokenizer, trained on in-domain frames, evaluated on out-of-domain ones."""
    input:
        lib=TOKENIZER_LIB,
        index=f"{OUT}/clips/index.csv",
        shards=expand(f"{OUT}/clips/{{task}}/shard_{{shard}}.h5", task=TASKS, shard=SHARDS),
    output:
        weights=f"{OUT}/tokenizer/model/model.safetensors",
        config=f"{OUT}/tokenizer/model/config.json",
        eval=f"{OUT}/tokenizer/eval.json",
    params:
        image_size=config["trajectories"]["image_size"],
        tokenizer=TOKENIZER_OPTIONS,
        train=config["tokenizer"]["train"],
    log:
        f"{OUT}/logs/train_tokenizer.log",
    benchmark:
        f"{OUT}/benchmarks/train_tokenizer.tsv"
    threads: config["tokenizer"]["resources"]["cpus"]
    resources:
        mem_mb=config["tokenizer"]["resources"]["mem_mb"],
        runtime=config["tokenizer"]["resources"]["runtime"],
        gpu=config["tokenizer"]["resources"]["gpus"],
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/train_tokenizer.py"


rule finetune_decoder:
    """Stage two: the tokenizer's decoder alone, on the frozen encoder's tokens (the token shards
    and world models do not change), with `decoder_context` seeing a real context frame too; the
    result decodes the world models' rollouts."""
    input:
        lib=DECODER_LIB,
        index=f"{OUT}/clips/index.csv",
        shards=expand(f"{OUT}/clips/{{task}}/shard_{{shard}}.h5", task=TASKS, shard=SHARDS),
        weights=f"{OUT}/tokenizer/model/model.safetensors",
        config=f"{OUT}/tokenizer/model/config.json",
    output:
        weights=f"{OUT}/tokenizer/finetuned/model/model.safetensors",
        config=f"{OUT}/tokenizer/finetuned/model/config.json",
        eval=f"{OUT}/tokenizer/finetuned/eval.json",
        figure=f"{OUT}/tokenizer/finetuned/reconstructions.png",
    params:
        image_size=config["trajectories"]["image_size"],
        tokenizer=TOKENIZER_OPTIONS,
        train=config["tokenizer"]["decoder_train"],
        decoder_context=config["tokenizer"]["decoder_context"],
    log:
        f"{OUT}/logs/finetune_decoder.log",
    benchmark:
        f"{OUT}/benchmarks/finetune_decoder.tsv"
    threads: config["tokenizer"]["resources"]["cpus"]
    resources:
        mem_mb=config["tokenizer"]["resources"]["mem_mb"],
        runtime=config["tokenizer"]["resources"]["runtime"],
        gpu=config["tokenizer"]["resources"]["gpus"],
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/train_tokenizer.py"


rule tokenize:
    """Encode one clip shard into a token shard with the trained tokenizer."""
    input:
        TOKENS_LIB,
        clips=f"{OUT}/clips/{{task}}/shard_{{shard}}.h5",
        weights=f"{OUT}/tokenizer/model/model.safetensors",
        config=f"{OUT}/tokenizer/model/config.json",
    output:
        f"{OUT}/tokens/{{task}}/shard_{{shard}}.h5",
    params:
        view=config["tokenizer"]["view"],
    log:
        f"{OUT}/logs/tokenize/{{task}}_{{shard}}.log",
    benchmark:
        f"{OUT}/benchmarks/tokenize/{{task}}_{{shard}}.tsv"
    resources:
        mem_mb=3000,
        runtime=30,
    wildcard_constraints:
        task="|".join(TASKS),
        shard=r"\d{3}",
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/tokenize.py"


rule token_index:
    """The clip index re-pointed at the token shards (what the world models read)."""
    input:
        TOKENS_LIB,
        index=f"{OUT}/clips/index.csv",
        clips=expand(f"{OUT}/clips/{{task}}/shard_{{shard}}.h5", task=TASKS, shard=SHARDS),
        tokens=expand(f"{OUT}/tokens/{{task}}/shard_{{shard}}.h5", task=TASKS, shard=SHARDS),
    output:
        f"{OUT}/tokens/index.csv",
    log:
        f"{OUT}/logs/token_index.log",
    benchmark:
        f"{OUT}/benchmarks/token_index.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/token_index.py"
