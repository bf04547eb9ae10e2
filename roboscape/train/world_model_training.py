"""Training the action and the text world models on the token shards (rules ``train_wm_action``
and ``train_wm_text``).

Both minimise Eqs. 2-4 (token cross-entropy + done RMSE) on windows of ``window`` frames from the
in-domain training episodes. The action WM's config records the statistics of the training
actions (standardisation, and the trained range the rollout clips to); the text WM reads each
clip's instruction states from the instruction cache.

Warm start (``init_from``): a model may start from another world model's weights (the text WM
from the action WM's), all but its control encoder, which differs between the two controls. Every
model holds out the same episodes (:func:`roboscape.data.token_windows.select_clips`), so the
held-out clips stay unseen.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from roboscape.data.token_windows import TokenWindowDataset, WorldModelData
from roboscape.models.control import TextControl, control_inputs
from roboscape.models.text_encoder import load_instruction_cache
from roboscape.models.world_model import (
    WorldModel,
    WorldModelConfig,
    predict_tokens,
    world_model_loss,
)
from roboscape.train.trainer import TrainConfig, Trainer
from roboscape.utils.io import write_json
from roboscape.utils.provenance import file_digest

log = logging.getLogger("roboscape")


def world_model_objective(text: TextControl | None, token_target: str, changed_token_weight: float = 1.0):
    def compute(model: WorldModel, batch: dict) -> dict[str, torch.Tensor]:
        tokens = batch["tokens"]
        out = model(tokens, *control_inputs(batch, text), clock=batch["clock"])
        losses = world_model_loss(out, tokens, batch["done"], token_target, changed_token_weight)
        with torch.no_grad():
            predicted = predict_tokens(out.logits[:, :-1], token_target)
            losses["token_accuracy"] = (predicted == tokens[:, 1:]).float().mean()
        return losses

    return compute


def prepare(
    wm_cfg: WorldModelConfig, data: WorldModelData
) -> tuple[WorldModelConfig, TokenWindowDataset, TextControl | None]:
    """The model config completed from the data (codebook, token grid, action statistics or text
    width), the training windows and the text lookup."""
    text = None
    instructions = None
    if wm_cfg.control == "text":
        if data.instruction_cache is None:
            raise ValueError("the text world model needs an instruction cache")
        instructions, states, mask = load_instruction_cache(data.instruction_cache)
        text = TextControl(states, mask)
        wm_cfg = replace(wm_cfg, text_dim=states.shape[-1])
    dataset = TokenWindowDataset(
        data.token_index,
        wm_cfg.window,
        "train",
        data.heldout_every,
        data.start_stride,
        instructions,
        frame_skip=wm_cfg.frame_skip,
        labels=data.trajectory_labels,
    )
    wm_cfg = replace(wm_cfg, codebook_size=dataset.codebook_size, tokens_hw=dataset.tokens_hw)
    if wm_cfg.control == "action":
        wm_cfg = replace(wm_cfg, **dataset.action_statistics())
    return wm_cfg, dataset, text


# Parameters whose shapes must agree for a warm start, and those a warm start leaves initialised.
WARM_START_FIELDS = ("codebook_size", "tokens_hw", "dim", "depth", "heads", "mlp_ratio", "token_target", "copy_prior")
# the control, the null action and the episode clock are the model's own
WARM_START_SKIPPED = ("control_encoder.", "null_control", "clock_emb.")


def warm_start(model: WorldModel, source_dir: str | Path) -> list[str]:
    """Copy the weights of the world model saved in ``source_dir`` into ``model``, all but the
    control encoder's (and the null action's and episode clock's); returns the names of the
    parameters left as initialised."""
    source = WorldModel.from_pretrained(source_dir)
    mismatched = [
        f"{name}: {getattr(source.cfg, name)!r} there, {getattr(model.cfg, name)!r} here"
        for name in WARM_START_FIELDS
        if getattr(source.cfg, name) != getattr(model.cfg, name)
    ]
    if mismatched:
        raise ValueError(f"cannot warm-start from {source_dir}, its architecture differs: " + "; ".join(mismatched))
    weights = {k: v for k, v in source.state_dict().items() if not k.startswith(WARM_START_SKIPPED)}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected:
        raise ValueError(f"warm start from {source_dir}: unexpected parameters {unexpected}")
    return missing


def train_world_model(
    wm_cfg: WorldModelConfig,
    data: WorldModelData,
    train_cfg: TrainConfig,
    out_dir: str | Path,
    stop_after: int | None = None,
    code_digest: str | None = None,
    init_from: str | None = None,
    changed_token_weight: float = 1.0,
) -> dict:
    """Train (resuming from the last checkpoint of the same configuration, data and code --
    ``code_digest``, see :mod:`roboscape.utils.provenance`), then save the model and ``train.json``.
    ``init_from``: a world model directory to warm-start from (see the module docstring); a
    checkpoint to resume from takes precedence. ``changed_token_weight``: see
    :func:`roboscape.models.world_model.world_model_loss`."""
    if changed_token_weight <= 0:
        raise ValueError(f"changed_token_weight must be positive, got {changed_token_weight}")
    out_dir = Path(out_dir)
    wm_cfg, dataset, text = prepare(wm_cfg, data)
    signature = {
        "world_model": asdict(wm_cfg),
        "data": asdict(data) | {"token_index": str(Path(data.token_index).resolve())},
        "code": code_digest,
    }
    if init_from is not None:
        signature["init_from"] = {
            "path": str(Path(init_from).resolve()),
            "sha256": file_digest(Path(init_from) / "model.safetensors"),
        }
    if changed_token_weight != 1.0:  # absent at 1, so earlier runs' checkpoints still resume
        signature["changed_token_weight"] = changed_token_weight

    def build() -> WorldModel:
        model = WorldModel(wm_cfg)
        if init_from is not None:
            kept_initialised = warm_start(model, init_from)
            log.info("warm start from %s; initialised afresh: %s", init_from, ", ".join(kept_initialised) or "nothing")
        return model

    trainer = Trainer(
        build,
        dataset,
        world_model_objective(text, wm_cfg.token_target, changed_token_weight),
        train_cfg,
        out_dir,
        signature=signature,
    )
    t0 = time.perf_counter()
    last = trainer.train(stop_after=stop_after)
    seconds = time.perf_counter() - t0  # includes restoring a checkpoint, if any
    result: dict = {"steps": trainer.step, "resumed_from_step": trainer.start_step, "final": last}
    if trainer.accelerator.is_main_process:
        model = trainer.unwrapped_model()
        steps_run = trainer.step - trainer.start_step
        tokens_per_step = (
            train_cfg.batch_size * trainer.accelerator.num_processes * wm_cfg.window * wm_cfg.tokens_per_frame
        )
        result.update(
            parameters=sum(p.numel() for p in model.parameters()),
            processes=trainer.accelerator.num_processes,
            device=str(trainer.accelerator.device),
            training_windows=len(dataset),
            tokens_per_second=tokens_per_step * steps_run / seconds if steps_run else None,
            config={
                "world_model": asdict(wm_cfg),
                "train": asdict(train_cfg),
                "data": asdict(data),
                "changed_token_weight": changed_token_weight,
            },
            init_from=signature.get("init_from"),
        )
        if trainer.step >= train_cfg.steps:
            model.save_pretrained(out_dir / "model")
            write_json(out_dir / "train.json", result)
    return result


def run_job(spec: dict) -> dict:
    """A training job (:mod:`roboscape.train.launch`): ``{"world_model": WorldModelConfig fields,
    "data": WorldModelData fields, "train": TrainConfig fields, "out_dir": ..., "code_digest": ...,
    "init_from": a model directory or null, "changed_token_weight": a float (default 1)}``."""
    return train_world_model(
        WorldModelConfig(**spec["world_model"]),
        WorldModelData(**spec["data"]),
        TrainConfig(**spec["train"]),
        spec["out_dir"],
        code_digest=spec.get("code_digest"),
        init_from=spec.get("init_from"),
        changed_token_weight=spec.get("changed_token_weight", 1.0),
    )
