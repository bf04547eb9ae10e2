"""Training the learned-reward baselines: what each frame is labelled with, the held-out metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import default_collate

from roboscape.data.frames import to_model_range
from roboscape.models.reward_models import RewardModel, RewardModelConfig
from roboscape.train.reward_training import (
    RewardData,
    RewardFrames,
    WindowFeatures,
    agreement,
    inputs,
    reward_objective,
    train_reward_model,
)
from roboscape.train.trainer import TrainConfig
from roboscape.utils.h5 import open_h5
from roboscape.utils.io import read_json

from fakes import fake_clip_index, models


def test_each_frame_is_labelled_with_the_reward_of_the_step_that_reached_it(tmp_path):
    index = fake_clip_index(tmp_path)
    frames = RewardFrames(index, "train", heldout_every=2, task="push")
    row = frames.index.iloc[0]
    assert len(frames) == len(frames.index) * (frames.clip_length - 1)
    with open_h5(tmp_path / row["shard"]) as f:
        rgb, rewards = f["rgb/third_view"][row["row"]], f["rewards"][row["row"]]
    for t in (0, frames.clip_length - 2):
        item = frames[t]
        assert torch.equal(item["frame"], to_model_range(torch.from_numpy(rgb[t + 1])))
        assert item["reward"] == pytest.approx(float(rewards[t]))
    with pytest.raises(ValueError, match="no clips of task"):
        RewardFrames(index, "train", heldout_every=2, task="pull")


def test_agreement_of_a_perfect_and_of_an_inverted_reward():
    rule = np.array([0.0, 0.1, 0.5, 0.7, 1.0])
    assert agreement(rule, rule) == {"mse": 0.0, "pearson": pytest.approx(1.0), "spearman": pytest.approx(1.0), "n": 5}
    assert agreement(1 - rule, rule)["spearman"] == pytest.approx(-1.0)


def test_a_proxy_is_trained_saved_and_scored_on_unseen_episodes_and_scenes(tmp_path):
    index = fake_clip_index(tmp_path, size=40)
    clips = pd.read_csv(index)
    second = (clips["split"] == "ind") & clips["shard"].str.startswith("c1")
    clips.loc[second, "episode_seed"] += 1  # two in-domain episodes: one to train on, one held out
    clips.to_csv(index, index=False)
    data = RewardData(str(index), "push", heldout_every=2)
    cfg = RewardModelConfig(kind="proxy", channels=(4, 8, 8), hidden_dim=8)
    train = TrainConfig(steps=4, batch_size=4, warmup_steps=1, checkpoint_every=2, log_every=1)
    result = train_reward_model(cfg, data, train, tmp_path / "out", eval_items=16)
    assert result["steps"] == 4 and result["config"]["reward_model"]["image_size"] == 40  # from the frames
    metrics = read_json(tmp_path / "out" / "metrics.json")
    # frames 1..4 of each 5-frame clip: two clips per in-domain episode, four of the OOD scene (eval_items caps)
    assert {s: metrics[s]["n"] for s in ("train", "heldout", "ood")} == {"train": 8, "heldout": 8, "ood": 16}
    model = RewardModel.from_pretrained(tmp_path / "out" / "model")
    assert model.cfg.kind == "proxy" and len(pd.read_csv(tmp_path / "out" / "metrics.csv")) == 4
    with pytest.raises(ValueError, match="give its directory"):
        train_reward_model(RewardModelConfig(kind="embedding"), data, train, tmp_path / "embedding")


def test_the_embedding_heads_cached_features_are_the_world_models_own():
    wm, _ = models()
    gen = torch.Generator().manual_seed(0)
    T, n_tokens = wm.cfg.window, wm.cfg.tokens_hw**2
    windows = [
        {
            "tokens": torch.randint(0, wm.cfg.codebook_size, (T, n_tokens), generator=gen),
            "actions": torch.randn(T, wm.cfg.action_dim, generator=gen),
            "rewards": torch.rand(T - 1, generator=gen),
        }
        for _ in range(5)
    ]
    cached = WindowFeatures(windows, wm, batch_size=2, device=torch.device("cpu"))
    assert len(cached) == 5 and cached[3]["features"].shape == (T - 1, wm.cfg.dim)
    batch = default_collate(windows)
    head = RewardModel(RewardModelConfig(kind="embedding", feature_dim=wm.cfg.dim, hidden_dim=8))
    objective = reward_objective(wm)
    from_windows, from_cache = objective(head, batch), objective(head, default_collate(list(cached)))
    torch.testing.assert_close(from_cache["loss"], from_windows["loss"])
    features, rewards = inputs(wm, default_collate(list(cached)))
    torch.testing.assert_close(features, inputs(wm, batch)[0])
    assert torch.equal(rewards, batch["rewards"].reshape(-1))
