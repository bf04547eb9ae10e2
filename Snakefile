# RoboScape-R pipeline: scenes -> trajectories -> clips (-> world models -> RL -> tables).
#   snakemake --cores all                          the default experiment (config.yaml)
#   snakemake --cores all --configfile config/tiny.yaml
#   snakemake --cores all --profile slurm          on a Slurm cluster
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/scenes.smk"
include: "workflow/rules/trajectories.smk"
include: "workflow/rules/clips.smk"
include: "workflow/rules/previews.smk"
include: "workflow/rules/tokenizer.smk"
include: "workflow/rules/world_model.smk"


rule all:
    input:
        f"{OUT}/scenes/scenes.json",
        f"{OUT}/trajectories/summary.json",
        f"{OUT}/trajectories/replay_fidelity.json",
        f"{OUT}/clips/index.csv",
        expand(f"{OUT}/previews/{{task}}.{{ext}}", task=TASKS, ext=["gif", "png"]),
        f"{OUT}/tokenizer/eval.json",
        f"{OUT}/tokenizer/finetuned/eval.json",
        f"{OUT}/tokens/index.csv",
        expand(f"{OUT}/world_model/{{control}}/eval/eval.json", control=["action", "text"]),
    default_target: True
