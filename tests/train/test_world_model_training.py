"""Training the world models: warm start, seeding, and jobs under `accelerate launch`."""

from __future__ import annotations

import pytest
import torch

from roboscape.data.token_windows import WorldModelData
from roboscape.models.world_model import WorldModel, WorldModelConfig
from roboscape.train.launch import launch, launch_from_resources
from roboscape.train.trainer import TrainConfig
from roboscape.train.world_model_training import run_job, train_world_model, warm_start
from roboscape.utils.io import read_json

# The tiny tier's architecture; the tests below that read its token shards run after its DAG.
TINY = {"window": 4, "dim": 32, "depth": 1, "heads": 2, "frame_skip": 1, "control": "action"}


def small(control: str, dim: int = 32, action_dropout: float = 0.0, episode_clock: int = 0) -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(
        WorldModelConfig(
            codebook_size=32,
            tokens_hw=3,
            window=5,
            dim=dim,
            depth=2,
            heads=4,
            control=control,
            text_dim=24,
            token_target="codes",
            action_dropout=action_dropout,
            episode_clock=episode_clock,
        )
    ).eval()


def test_warm_start_copies_all_but_the_control_encoder_and_refuses_another_architecture(tmp_path):
    source = small("action")
    source.save_pretrained(tmp_path / "action")
    torch.manual_seed(1)
    fresh = WorldModel(small("text").cfg)
    fresh_encoder = {k: v.clone() for k, v in fresh.control_encoder.state_dict().items()}
    skipped = warm_start(fresh, tmp_path / "action")
    assert skipped and all(name.startswith("control_encoder.") for name in skipped)
    copied = {k: v for k, v in fresh.state_dict().items() if not k.startswith("control_encoder.")}
    torch.testing.assert_close(copied, {k: v for k, v in source.state_dict().items() if k in copied}, rtol=0, atol=0)
    torch.testing.assert_close(fresh.control_encoder.state_dict(), fresh_encoder, rtol=0, atol=0)
    with pytest.raises(ValueError, match="dim"):
        warm_start(small("text", dim=16), tmp_path / "action")
    # a guidable action model's null action is its own control too: a text model leaves it behind
    small("action", action_dropout=0.1).save_pretrained(tmp_path / "guidable")
    assert warm_start(WorldModel(small("text").cfg), tmp_path / "guidable") == skipped
    # so is an episode clock: a text model with one starts it at zero, from a source with or without one
    for source_clock in (0, 8):
        small("action", episode_clock=source_clock).save_pretrained(tmp_path / f"clock{source_clock}")
        clocked = WorldModel(small("text", episode_clock=4).cfg)
        assert warm_start(clocked, tmp_path / f"clock{source_clock}") == [*skipped, "clock_emb.weight"]
        assert not clocked.clock_emb.weight.any()
    assert warm_start(WorldModel(small("text").cfg), tmp_path / "clock8") == skipped


@pytest.mark.slow
def test_training_under_accelerate_launch_with_two_processes(tiny_run, tmp_path):
    spec = {
        "world_model": TINY,
        "data": {"token_index": str(tiny_run.out / "tokens" / "index.csv"), "heldout_every": 4},
        "train": {"steps": 2, "batch_size": 2, "warmup_steps": 1, "checkpoint_every": 1, "log_every": 1},
        "out_dir": str(tmp_path / "wm"),
    }
    launch(run_job, spec, tmp_path / "job.json", processes=2, cpu=True, threads=1)
    summary = read_json(tmp_path / "wm" / "train.json")
    assert summary["processes"] == 2 and summary["steps"] == 2
    assert (tmp_path / "wm" / "model" / "model.safetensors").exists()
    assert read_json(tmp_path / "job.json")["entry"] == "roboscape.train.world_model_training"


@pytest.mark.slow
def test_the_same_config_trains_the_same_world_model_whatever_ran_before(tiny_run, tmp_path):
    cfg = WorldModelConfig(**TINY)
    data = WorldModelData(token_index=str(tiny_run.out / "tokens" / "index.csv"), heldout_every=4)
    for run, global_seed in (("a", 1), ("b", 2)):  # what a process did before must not matter
        torch.manual_seed(global_seed)
        train_world_model(cfg, data, TrainConfig(steps=1, batch_size=2, log_every=1), tmp_path / run)
    a, b = (WorldModel.from_pretrained(tmp_path / run / "model").state_dict() for run in ("a", "b"))
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # the same keys, exactly the same values


def test_a_changed_token_weight_that_is_not_positive_is_refused_before_the_data_is_read(tmp_path):
    data = WorldModelData(token_index=str(tmp_path / "missing.csv"))
    with pytest.raises(ValueError, match="changed_token_weight"):
        train_world_model(WorldModelConfig(**TINY), data, TrainConfig(steps=1), tmp_path / "wm", changed_token_weight=0)


@pytest.mark.slow
def test_a_run_with_another_changed_token_weight_does_not_resume_its_checkpoints(tiny_run, tmp_path):
    cfg = WorldModelConfig(**TINY)
    data = WorldModelData(token_index=str(tiny_run.out / "tokens" / "index.csv"), heldout_every=4)
    train = TrainConfig(steps=2, batch_size=2, log_every=1, checkpoint_every=1)
    first = train_world_model(cfg, data, train, tmp_path / "wm", stop_after=1, changed_token_weight=3.0)
    assert first["steps"] == 1
    assert train_world_model(cfg, data, train, tmp_path / "wm")["resumed_from_step"] == 0  # weight 1: set aside
    again = train_world_model(cfg, data, train, tmp_path / "again", stop_after=1, changed_token_weight=3.0)
    resumed = train_world_model(cfg, data, train, tmp_path / "again", changed_token_weight=3.0)
    assert again["steps"] == 1 and resumed["resumed_from_step"] == 1
    assert read_json(tmp_path / "again" / "train.json")["config"]["changed_token_weight"] == 3.0


def test_a_job_that_is_not_a_training_modules_run_job_is_refused_before_anything_starts(tmp_path):
    def run_job(spec):  # not a roboscape module's
        return spec

    for job in (run_job, print, train_world_model):
        with pytest.raises(ValueError, match="a roboscape module's run_job"):
            launch_from_resources(job, {"train": {}}, tmp_path / "job.json", gpus=0, threads=1)
    assert not (tmp_path / "job.json").exists()
