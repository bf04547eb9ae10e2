# Shared helpers: config validation, the output layout, shard enumeration, library inputs.
import math
import os
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))
sys.path.insert(0, workflow.basedir)
from library_inputs import library_closure  # noqa: E402
from roboscape.sim.catalogue import MULTITASK, build_catalogue, group_domains, multitask_scene_ids  # noqa: E402


validate(config, schema="../schemas/config.schema.yaml")


def _sorted(value):
    return {k: _sorted(value[k]) for k in sorted(value)} if isinstance(value, dict) else value


# Keys in a stable order, so that a rule's params do not depend on the order in which a tier's
# overlay or an edited config file lists them (Snakemake compares params as written).
for _key in list(config):
    config[_key] = _sorted(config[_key])

OUT = config["outdir"].rstrip("/")
TASKS = list(config["scenes"]["tasks"])
MULTITASK_CONFIG = config["scenes"]["multitask"]
# The catalogue as the scenes rule builds it: building it here rejects a config whose multi-task
# scenes (Table 2's) are out of domain, of a task not run, or beyond n_ind before any job starts
try:
    CATALOGUE = build_catalogue(
        config["scenes"]["split_seed"], TASKS, config["scenes"]["n_ind"], config["scenes"]["n_ood"],
        n_ood_objects=config["scenes"]["n_ood_objects"], n_ood_pairs=config["scenes"]["n_ood_pairs"],
        multitask=multitask_scene_ids(MULTITASK_CONFIG["tasks"], MULTITASK_CONFIG["objects"],
                                      MULTITASK_CONFIG["container"], MULTITASK_CONFIG["table"]))
except (KeyError, ValueError) as error:
    raise ValueError(f"config fails validation: scenes: {error}") from None
MULTITASK_SCENES = CATALOGUE.multitask
# OpenVLA at its full size needs the downloaded weights: say so before any job starts (a GPU is
# checked where the job runs)
_OPENVLA = config["policy"]["openvla"]
if config["policy"]["kind"] == "openvla":
    if _OPENVLA["weights"] is None and not _OPENVLA["vla"]:
        raise ValueError("config fails validation: policy.openvla.weights: OpenVLA-7B needs its pretrained weights; "
                         "download openvla/openvla-7b (huggingface-cli download openvla/openvla-7b --local-dir DIR) "
                         "and set policy.openvla.weights to DIR (random weights only for reduced sizes, policy.openvla.vla)")
    if _OPENVLA["weights"] is not None and not any(
        (Path(_OPENVLA["weights"]) / name).exists() for name in ("model.safetensors", "model.safetensors.index.json")
    ):
        raise ValueError(f"config fails validation: policy.openvla.weights: {_OPENVLA['weights']} holds no "
                         "model.safetensors(.index.json) of openvla/openvla-7b")
group_tasks = CATALOGUE.group_tasks  # the tasks whose data and goals a policy group reads
GROUPS = [*TASKS, MULTITASK]  # the policy groups: one policy per task, and Table 2's multi-task policy
SCENES_PER_TASK = config["scenes"]["n_ind"] + config["scenes"]["n_ood"]
N_SHARDS = math.ceil(SCENES_PER_TASK / config["trajectories"]["scenes_per_shard"])
SHARDS = [f"{i:03d}" for i in range(N_SHARDS)]
GENERATOR = config["trajectories"]["generator"]
TOKENIZER = config["tokenizer"]
WM = config["world_model"]
REPORT = Path(workflow.basedir) / "workflow" / "report"


def library(script):
    """The library files the rule script ``script`` loads (its imports' closure), declared as the
    rule's inputs so that editing one reruns the rule (workflow/library_inputs.py). Relative to the
    working directory, as Snakemake records inputs: a project moved or copied with its results is
    up to date where it lands."""
    closure = library_closure(Path(workflow.basedir) / "workflow" / "scripts" / script, workflow.basedir)
    return [os.path.relpath(path) for path in closure]


def caption(name):
    return str(REPORT / f"{name}.rst")


def trajectory_shards(ext):
    return expand(f"{OUT}/trajectories/{{task}}/shard_{{shard}}.{ext}", task=TASKS, shard=SHARDS)


def shard_files(stage, ext="h5"):
    return expand(f"{OUT}/{stage}/{{task}}/shard_{{shard}}.{ext}", task=TASKS, shard=SHARDS)


def wm_data(control):
    """What the world model ``control`` reads of the token shards (WorldModelData's fields)."""
    return {**WM["data"], "trajectory_labels": WM[control]["trajectory_labels"]}


for _control in ("action", "text"):
    if WM[_control]["init_from"] == _control:
        raise ValueError(f"config fails validation: world_model.{_control}.init_from: a world model cannot warm-start from itself")
    if WM[_control]["init_from"] is not None and WM[WM[_control]["init_from"]]["init_from"] is not None:
        raise ValueError("config fails validation: world_model.*.init_from: at most one of the two world models may warm-start "
                         "from the other")


if WM["guidance"]["scale"] != 1 and not WM["guidance"]["action_dropout"]:
    raise ValueError("config fails validation: world_model.guidance.scale: guidance needs a world model trained with "
                     "world_model.guidance.action_dropout above 0")
if config["rl"]["world_model"]["goals"]["guidance"] != 1 and not WM["guidance"]["text_dropout"]:
    raise ValueError("config fails validation: rl.world_model.goals.guidance: guidance needs a text world model "
                     "trained with world_model.guidance.text_dropout above 0")
# how every rollout of the action world model is guided and computed (eval_wm_action, controllability, rl_world_model)
ROLLOUT = {"guidance": WM["guidance"]["scale"], "guidance_positions": WM["guidance"]["positions"],
           "precision": WM["rollout_precision"]}


def wm_training_inputs(control):
    inputs = {"lib": library("train_world_model.py"), "index": f"{OUT}/tokens/index.csv", "tokens": shard_files("tokens")}
    if control == "text":
        inputs["instructions"] = f"{OUT}/world_model/instructions.safetensors"
    if (source := WM[control]["init_from"]) is not None:
        inputs["init_weights"] = f"{OUT}/world_model/{source}/model/model.safetensors"
    return inputs
