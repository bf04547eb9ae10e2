# Shared helpers -- config validation, output layout, shard enumeration, library dependencies.
import math
from pathlib import Path

from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")

OUT = config["outdir"].rstrip("/")
TASKS = list(config["scenes"]["tasks"])
SCENES_PER_TASK = config["scenes"]["n_ind"] + config["scenes"]["n_ood"]
N_SHARDS = math.ceil(SCENES_PER_TASK / config["trajectories"]["scenes_per_shard"])
SHARDS = [f"{i:03d}" for i in range(N_SHARDS)]

LIB = Path(workflow.basedir) / "roboscape"


def library(*modules):
    """Library source files a stage uses, declared as its inputs so that editing one reruns it."""
    return [str(LIB / m) for m in modules]


SCENES_LIB = library("sim/catalogue.py", "utils/io.py")
TRAJECTORY_LIB = SCENES_LIB + library(
    "sim/assets.py", "sim/env.py", "sim/generator.py", "sim/planner.py", "sim/robot.py",
    "sim/shard.py", "sim/tasks.py", "sim/waypoints.py", "data/trajectory_io.py",
)
REPLAY_LIB = TRAJECTORY_LIB + library("sim/replay.py")
CLIPS_LIB = library("data/clips.py", "data/trajectory_io.py", "utils/io.py")
MODEL_FILES_LIB = library("models/tokenizer.py", "train/checkpoint.py", "utils/config.py")
TOKENIZER_LIB = CLIPS_LIB + MODEL_FILES_LIB + library(
    "data/dataset.py", "data/frames.py", "eval/image_metrics.py", "models/perceptual.py",
    "train/launch.py", "train/tokenizer_training.py", "train/trainer.py", "utils/provenance.py",
)
DECODER_LIB = TOKENIZER_LIB + library("train/decoder_finetuning.py", "report/rollout_figures.py")
TOKENS_LIB = MODEL_FILES_LIB + library("data/tokens.py", "data/frames.py", "data/trajectory_io.py", "utils/io.py")
TEXT_ENCODER_LIB = library("models/text_encoder.py", "utils/io.py")
WM_TRAIN_LIB = TEXT_ENCODER_LIB + library(
    "data/token_windows.py", "data/trajectory_io.py", "models/world_model.py", "train/checkpoint.py", "train/launch.py",
    "train/trainer.py", "train/world_model_training.py", "utils/config.py", "utils/provenance.py",
)
WM_EVAL_LIB = sorted(set(WM_TRAIN_LIB + MODEL_FILES_LIB + library(
    "data/dataset.py", "data/frames.py", "eval/image_metrics.py", "eval/world_model_eval.py", "models/perceptual.py",
    "models/inference_decoder.py", "models/rollout.py", "report/rollout_figures.py",
)))


def trajectory_shards(ext):
    return expand(f"{OUT}/trajectories/{{task}}/shard_{{shard}}.{ext}", task=TASKS, shard=SHARDS)


WM = config["world_model"]
WM_DATA_KEYS = ("heldout_every", "start_stride")
# The section's other scalar keys are WorldModelConfig fields (the training job refuses any other);
# text_encoder is the instruction cache's.
WM_ARCH = {k: v for k, v in WM.items() if k not in WM_DATA_KEYS and k != "text_encoder" and not isinstance(v, dict)}


def wm_data(control):
    """What the world model ``control`` reads of the token shards (WorldModelData's fields)."""
    return {**{k: WM[k] for k in WM_DATA_KEYS}, "trajectory_labels": WM[control]["trajectory_labels"]}


for _control in ("action", "text"):
    if WM[_control]["init_from"] == _control:
        raise ValueError(f"config fails validation: world_model.{_control}.init_from: a world model cannot warm-start from itself")
    if WM[_control]["init_from"] is not None and WM[WM[_control]["init_from"]]["init_from"] is not None:
        raise ValueError("config fails validation: world_model.*.init_from: at most one of the two world models may warm-start "
                         "from the other")


def wm_training_inputs(control):
    inputs = {"lib": WM_TRAIN_LIB, "index": f"{OUT}/tokens/index.csv",
              "tokens": expand(f"{OUT}/tokens/{{task}}/shard_{{shard}}.h5", task=TASKS, shard=SHARDS)}
    if control == "text":
        inputs["instructions"] = f"{OUT}/world_model/instructions.safetensors"
    if (source := WM[control]["init_from"]) is not None:
        inputs["init_weights"] = f"{OUT}/world_model/{source}/model/model.safetensors"
    return inputs
