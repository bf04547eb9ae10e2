"""Training the learned-reward baselines (rule ``train_reward``; :mod:`roboscape.models.reward_models`).

Per task, on that task's in-domain training episodes -- the world models' split
(:func:`roboscape.data.token_windows.select_clips`), so the held-out episodes stay unseen -- with
the recorded rule-based dense reward of each frame as the label:

- ``embedding``: windows of the token shards at the world model's rate; the frozen action world
  model runs teacher-forced over each window and the head regresses, from the hidden states that
  predicted each frame, that frame's reward. The world model being frozen, its hidden states over
  the training windows are computed once (:class:`WindowFeatures`, ``cache_features``) instead of
  at every visit of a window;
- ``proxy``: the third-view frames of the clip shards (the world model's resolution), each with
  the reward of the control step that reached it.

Held-out metrics (``metrics.json``), per subset (``heldout``: unseen in-domain episodes, ``ood``:
the out-of-domain scenes): the mean squared error in reward units, and the Pearson and Spearman
correlations of the predicted with the rule-based reward, over ``n`` frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate import PartialState
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from roboscape.data.frames import to_model_range
from roboscape.data.token_windows import TokenWindowDataset, select_clips
from roboscape.models.reward_models import RewardModel, RewardModelConfig, symexp, symlog
from roboscape.models.world_model import WorldModel
from roboscape.train.trainer import TrainConfig, Trainer
from roboscape.utils.h5 import DataFileError, OpenShards
from roboscape.utils.io import write_json
from roboscape.utils.provenance import file_digest

HELDOUT_SUBSETS = ("heldout", "ood")


@dataclass
class RewardData:
    """What a reward model reads: the token index (embedding) or the clip index (proxy), its task,
    the world models' held-out split and the kinds of trajectory."""

    index: str
    task: str
    heldout_every: int = 5
    start_stride: int = 2
    trajectory_labels: list[str] | None = None
    view: str = "third_view"


class RewardFrames(Dataset):
    """Frames 1..L-1 of the selected clips of one task, each with the rule-based reward of the
    control step that reached it: ``{"frame": (3, H, W) in [-1, 1], "reward": ()}``."""

    def __init__(
        self,
        clip_index: str | Path,
        subset: str,
        heldout_every: int,
        task: str,
        labels: list[str] | None = None,
        view: str = "third_view",
    ):
        clip_index = Path(clip_index)
        index = select_clips(pd.read_csv(clip_index), subset, heldout_every, labels)
        self.index = index[index["task"] == task].reset_index(drop=True)
        if len(self.index) == 0:
            raise ValueError(f"no clips of task {task!r} in {clip_index} for subset {subset!r}")
        self.view = view
        self._shards, self._rows = self.index["shard"].to_numpy(), self.index["row"].to_numpy()
        self._file = OpenShards(clip_index.parent)
        self.clip_length = int(self._file(self._shards[0]).attrs["clip_length"])

    def __len__(self) -> int:
        return len(self.index) * (self.clip_length - 1)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        clip, t = divmod(int(i), self.clip_length - 1)
        rel, row = self._shards[clip], int(self._rows[clip])
        f = self._file(rel)
        try:
            frame = f["rgb"][self.view][row, t + 1]
            reward = f["rewards"][row, t]
        except (OSError, KeyError) as err:
            raise DataFileError(self._file.root / rel, f"clip row {row} cannot be read ({err})") from err
        return {"frame": to_model_range(torch.from_numpy(frame)), "reward": torch.tensor(float(reward))}


def window_features(world_model: WorldModel, batch: dict) -> torch.Tensor:
    """The frozen world model's hidden states that predicted frames 1..T-1 of each window: (B, T-1, D);
    the windows' episode steps (``clock``) where they have them (a world model with an
    ``episode_clock`` needs them)."""
    tokens = batch["tokens"]
    world_model.to(tokens.device)
    with torch.no_grad():
        return world_model(tokens, batch["actions"], clock=batch.get("clock")).features[:, :-1]


class WindowFeatures(Dataset):
    """A window dataset's items as the embedding head reads them, computed once:
    ``{"features": (T-1, D), "rewards": (T-1,)}`` per window, in the windows' order, so that the
    training sampler draws the same windows as it would from ``windows``. Holds N x (T-1) x D floats;
    under several processes (accelerate launch) each computes and holds its own copy."""

    def __init__(self, windows: Dataset, world_model: WorldModel, batch_size: int, device: torch.device):
        features, rewards = [], []
        for batch in tqdm(DataLoader(windows, batch_size=batch_size), desc="world-model features", mininterval=10):
            features.append(window_features(world_model, {k: v.to(device) for k, v in batch.items()}).cpu())
            rewards.append(batch["rewards"])
        self.features, self.rewards = torch.cat(features), torch.cat(rewards)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"features": self.features[i], "rewards": self.rewards[i]}


def inputs(world_model: WorldModel | None, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """What the reward model reads of a batch, and the rewards it should give: the frames (proxy),
    or the frozen world model's hidden states that predicted frames 1..T-1 of each window
    (B*(T-1), D) with those frames' rewards (embedding; computed now, or read from
    :class:`WindowFeatures`)."""
    if world_model is None:
        return batch["frame"], batch["reward"]
    features = batch["features"] if "features" in batch else window_features(world_model, batch)
    return features.reshape(-1, features.shape[-1]), batch["rewards"].reshape(-1)


def reward_objective(world_model: WorldModel | None):
    def compute(model: RewardModel, batch: dict) -> dict[str, torch.Tensor]:
        x, reward = inputs(world_model, batch)
        return {"loss": torch.nn.functional.mse_loss(model(x), symlog(reward.float()))}

    return compute


def dataset(cfg: RewardModelConfig, data: RewardData, subset: str, world_model: WorldModel | None) -> Dataset:
    if cfg.kind == "proxy":
        return RewardFrames(data.index, subset, data.heldout_every, data.task, data.trajectory_labels, data.view)
    return TokenWindowDataset(
        data.index,
        world_model.cfg.window,
        subset,
        data.heldout_every,
        data.start_stride,
        frame_skip=world_model.cfg.frame_skip,
        labels=data.trajectory_labels,
        tasks=[data.task],
    )


@torch.no_grad()
def predictions(
    model: RewardModel, items: Dataset, world_model: WorldModel | None, max_items: int, batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, rule-based) rewards of ``max_items`` items spread evenly over a dataset."""
    model.eval()
    picked = np.unique(np.linspace(0, len(items) - 1, min(len(items), max_items)).round().astype(int))
    subset = torch.utils.data.Subset(items, picked.tolist())
    predicted, rule = [], []
    for batch in DataLoader(subset, batch_size=batch_size):
        x, reward = inputs(world_model, batch)
        predicted.append(symexp(model(x)).numpy())
        rule.append(reward.numpy())
    return np.concatenate(predicted), np.concatenate(rule)


def agreement(predicted: np.ndarray, rule: np.ndarray) -> dict[str, float]:
    """Mean squared error, Pearson and Spearman correlation of predicted against rule-based rewards."""
    p, r = pd.Series(predicted, dtype=float), pd.Series(rule, dtype=float)
    return {
        "mse": float(((p - r) ** 2).mean()),
        "pearson": float(p.corr(r)),
        "spearman": float(p.corr(r, method="spearman")),
        "n": len(p),
    }


def train_reward_model(
    cfg: RewardModelConfig,
    data: RewardData,
    train_cfg: TrainConfig,
    out_dir: str | Path,
    world_model_dir: str | Path | None = None,
    eval_items: int = 4096,
    code_digest: str | None = None,
    cache_features: bool = True,
) -> dict:
    """Train (resuming from the last checkpoint of the same configuration, data and code), save the
    model to ``out_dir/model``, its held-out metrics to ``out_dir/metrics.json`` and ``train.json``.
    ``cache_features``: the embedding head trains on the world model's hidden states computed once
    per training window (:class:`WindowFeatures`) rather than at every visit."""
    out_dir = Path(out_dir)
    world_model = None
    if cfg.kind == "embedding":
        if world_model_dir is None:
            raise ValueError("the embedding reward reads an action world model: give its directory")
        world_model = WorldModel.from_pretrained(world_model_dir).requires_grad_(False)
        if world_model.cfg.control != "action":
            raise ValueError(f"{world_model_dir} is a {world_model.cfg.control} world model, not an action one")
        cfg = replace(cfg, feature_dim=world_model.cfg.dim)
    train = dataset(cfg, data, "train", world_model)
    if world_model is not None and cache_features:
        train = WindowFeatures(train, world_model, train_cfg.batch_size, PartialState().device)
    if cfg.kind == "proxy":
        cfg = replace(cfg, image_size=train[0]["frame"].shape[-1])
    signature = {
        "reward_model": asdict(cfg),
        "data": asdict(data),
        "world_model": None if world_model_dir is None else file_digest(Path(world_model_dir) / "model.safetensors"),
        "code": code_digest,
    }
    trainer = Trainer(
        lambda: RewardModel(cfg), train, reward_objective(world_model), train_cfg, out_dir, signature=signature
    )
    last = trainer.train()
    result = {
        "steps": trainer.step,
        "resumed_from_step": trainer.start_step,
        "final": last,
        "items": len(train),
        "config": {"reward_model": asdict(cfg), "train": asdict(train_cfg), "data": asdict(data)},
        "world_model": None if world_model_dir is None else str(world_model_dir),
    }
    if trainer.accelerator.is_main_process:
        model = trainer.unwrapped_model().cpu()
        if world_model is not None:
            world_model.cpu()
        metrics = {
            "kind": cfg.kind,
            "task": data.task,
            "train": agreement(*predictions(model, train, world_model, eval_items)),
        }
        for subset in HELDOUT_SUBSETS:
            try:
                items = dataset(cfg, data, subset, world_model)
            except ValueError as err:  # e.g. a task without out-of-domain data
                metrics[subset] = {"n": 0, "note": str(err)}
                continue
            metrics[subset] = agreement(*predictions(model, items, world_model, eval_items))
        model.save_pretrained(out_dir / "model")
        write_json(out_dir / "metrics.json", metrics)
        write_json(out_dir / "train.json", result)
    return result


def run_job(spec: dict) -> dict:
    """A training job (:mod:`roboscape.train.launch`): ``{"reward_model": RewardModelConfig fields,
    "data": RewardData fields, "train": TrainConfig fields, "out_dir": ..., "world_model": a model
    directory (embedding) or null, "eval_items": ..., "code_digest": ..., "cache_features": ...}``."""
    return train_reward_model(
        RewardModelConfig(**spec["reward_model"]),
        RewardData(**spec["data"]),
        TrainConfig(**spec["train"]),
        spec["out_dir"],
        world_model_dir=spec.get("world_model"),
        eval_items=spec.get("eval_items", 4096),
        code_digest=spec.get("code_digest"),
        cache_features=spec.get("cache_features", True),
    )
