rule train_tokenizer:
    """The MAGVIT-2-style tokenizer, trained on in-domain frames, evaluated on out-of-domain ones."""
    input:
        lib=library("train_tokenizer.py"),
        index=f"{OUT}/clips/index.csv",
        shards=shard_files("clips"),
    output:
        weights=f"{OUT}/tokenizer/model/model.safetensors",
        config=f"{OUT}/tokenizer/model/config.json",
        eval=f"{OUT}/tokenizer/eval.json",
    params:
        image_size=GENERATOR["image_size"],
        model=TOKENIZER["model"],
        run=TOKENIZER["run"],
        train=TOKENIZER["train"],
    log:
        f"{OUT}/logs/train_tokenizer.log",
    benchmark:
        f"{OUT}/benchmarks/train_tokenizer.tsv"
    threads: TOKENIZER["resources"]["cpus"]
    resources:
        mem_mb=TOKENIZER["resources"]["mem_mb"],
        runtime=TOKENIZER["resources"]["runtime"],
        gpu=TOKENIZER["resources"]["gpus"],
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/train_tokenizer.py"


rule finetune_decoder:
    """Stage two: the tokenizer's decoder alone, on the frozen encoder's tokens (the token shards
    and world models do not change), with `decoder_context` seeing a real context frame too, and
    `decoder_channels` wide; the result decodes the world models' rollouts."""
    input:
        lib=library("finetune_decoder.py"),
        index=f"{OUT}/clips/index.csv",
        shards=shard_files("clips"),
        weights=f"{OUT}/tokenizer/model/model.safetensors",
        config=f"{OUT}/tokenizer/model/config.json",
    output:
        weights=f"{OUT}/tokenizer/finetuned/model/model.safetensors",
        config=f"{OUT}/tokenizer/finetuned/model/config.json",
        eval=f"{OUT}/tokenizer/finetuned/eval.json",
        figure=report(f"{OUT}/tokenizer/finetuned/reconstructions.png", caption=caption("reconstructions"),
                      category="2. Tokenizer", labels={"figure": "reconstructions of held-out frames"}),
    params:
        run=TOKENIZER["run"],
        train=TOKENIZER["decoder_train"],
        decoder_context=TOKENIZER["decoder_context"],
        decoder_channels=TOKENIZER["decoder_channels"],
    log:
        f"{OUT}/logs/finetune_decoder.log",
    benchmark:
        f"{OUT}/benchmarks/finetune_decoder.tsv"
    threads: TOKENIZER["resources"]["cpus"]
    resources:
        mem_mb=TOKENIZER["resources"]["mem_mb"],
        runtime=TOKENIZER["resources"]["runtime"],
        gpu=TOKENIZER["resources"]["gpus"],
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/finetune_decoder.py"


rule tokenize:
    """Encode one clip shard into a token shard with the trained tokenizer."""
    input:
        lib=library("tokenize.py"),
        clips=f"{OUT}/clips/{{task}}/shard_{{shard}}.h5",
        weights=f"{OUT}/tokenizer/model/model.safetensors",
        config=f"{OUT}/tokenizer/model/config.json",
    output:
        f"{OUT}/tokens/{{task}}/shard_{{shard}}.h5",
    params:
        view=TOKENIZER["run"]["view"],
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
        lib=library("token_index.py"),
        index=f"{OUT}/clips/index.csv",
        clips=shard_files("clips"),
        tokens=shard_files("tokens"),
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
