# RoboScape-R pipeline: scenes -> trajectories -> clips -> tokenizer -> world models; policies -> RL -> evaluation.
#   snakemake --cores all                                  the default experiment (config.yaml)
#   snakemake --cores all --configfile config/tiny.yaml    a tier: an overlay on config.yaml
#   snakemake --cores all --profile slurm                  on a Slurm cluster
#   snakemake --report report.html                         the figures and tables, with captions
from snakemake.utils import min_version

min_version("9.0")


# The default experiment; a tier (--configfile) is merged over it, from any working directory.
configfile: f"{workflow.basedir}/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/scenes.smk"
include: "workflow/rules/trajectories.smk"
include: "workflow/rules/clips.smk"
include: "workflow/rules/previews.smk"
include: "workflow/rules/tokenizer.smk"
include: "workflow/rules/world_model.smk"
include: "workflow/rules/policy.smk"
include: "workflow/rules/controllability.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"


# What a run makes; the timings read every job's benchmark, so they come after all of it.
TARGETS = [
    f"{OUT}/scenes/scenes.json",
    f"{OUT}/trajectories/replay_fidelity.json",
    *expand(f"{OUT}/previews/{{task}}.{{ext}}", task=TASKS, ext=["gif", "png"]),
    f"{OUT}/tokens/index.csv",
    f"{OUT}/summary.md",
    f"{OUT}/tables/table1.md",
    f"{OUT}/tables/table2.md",
    *expand(f"{OUT}/figures/rollouts_{{domain}}.{{ext}}", domain=["ind", "ood"], ext=["png", "pdf", "gif"]),
    *CURVE_FIGURE,
    *drift_results().values(),
]


include: "workflow/rules/timings.smk"


rule all:
    input:
        TARGETS,
        f"{OUT}/timings/timings.md",
    default_target: True
