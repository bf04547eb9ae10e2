"""The Accelerate training loop: resume after an interruption, metrics, the sample stream."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from roboscape.train.trainer import SampleStream, TrainConfig, Trainer


class Pairs(Dataset):
    def __init__(self, n: int = 40):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.randn(4, 2, generator=g) + 0.1 * torch.randn(n, 2, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


def mse(model, batch):
    pred = model(batch["x"])
    return {"loss": ((pred - batch["y"]) ** 2).mean(), "abs": (pred - batch["y"]).abs().mean()}


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))


CFG = TrainConfig(steps=12, batch_size=5, lr=1e-2, warmup_steps=2, checkpoint_every=4, log_every=2, seed=3)


def test_resumed_training_matches_an_uninterrupted_run(tmp_path):
    straight = Trainer(make_model(0), Pairs(), mse, CFG, tmp_path / "a")
    straight.train()
    # interrupted after step 6 (last checkpoint: step 4), then restarted in a new trainer whose
    # fresh model has different weights: everything must come back from the checkpoint
    interrupted = Trainer(make_model(0), Pairs(), mse, CFG, tmp_path / "b")
    interrupted.train(stop_after=6)
    assert interrupted.step == 6
    resumed = Trainer(make_model(99), Pairs(), mse, CFG, tmp_path / "b")
    resumed.train()
    assert resumed.step == 12
    for p, q in zip(straight.unwrapped_model().parameters(), resumed.unwrapped_model().parameters(), strict=True):
        assert torch.equal(p, q)
    with open(tmp_path / "b" / "metrics.csv") as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh)]
    assert steps == [2, 4, 6, 8, 10, 12]  # no duplicated rows from the interrupted attempt
    assert any((tmp_path / "b" / "tensorboard").iterdir())
    assert len(list((tmp_path / "b" / "checkpoints").glob("step_*"))) == CFG.keep_checkpoints


def test_a_finished_run_restarted_returns_its_last_losses(tmp_path):
    """A job redone after its run finished (say, killed while saving its outputs) resumes at the
    last step, trains nothing, and must still report the losses the run ended with."""
    finished = Trainer(make_model(0), Pairs(), mse, CFG, tmp_path).train()
    restarted = Trainer(make_model(99), Pairs(), mse, CFG, tmp_path)
    again = restarted.train()
    assert restarted.start_step == restarted.step == CFG.steps
    assert set(again) == {"loss", "abs"}
    assert again == finished  # the log keeps floats exactly (repr round-trips)


def test_checkpoints_of_another_configuration_are_not_resumed(tmp_path):
    Trainer(make_model(0), Pairs(), mse, CFG, tmp_path).train(stop_after=4)
    other = TrainConfig(**{**CFG.__dict__, "lr": 5e-3})
    fresh = Trainer(make_model(0), Pairs(), mse, other, tmp_path)
    fresh.train(stop_after=1)
    assert fresh.step == 1  # started afresh, not at step 4
    assert list(tmp_path.glob("checkpoints.stale-*"))


def test_a_checkpoint_is_renamed_only_after_every_rank_has_saved_its_state(tmp_path, monkeypatch):
    """With several processes a slower rank may still be writing its state files into the
    temporary folder when the main process finishes: the rename must wait at a barrier."""
    trainer = Trainer(make_model(0), Pairs(), mse, CFG, tmp_path)
    acc = trainer.accelerator
    events: list[str] = []
    save_state, barrier, rename = acc.save_state, acc.wait_for_everyone, Path.rename
    monkeypatch.setattr(acc, "save_state", lambda d: (events.append("save_state"), save_state(d))[1])
    monkeypatch.setattr(acc, "wait_for_everyone", lambda: (events.append("barrier"), barrier())[1])
    monkeypatch.setattr(Path, "rename", lambda p, t: (events.append("rename"), rename(p, t))[1])
    trainer.save_checkpoint()
    assert events.index("barrier", events.index("save_state")) < events.index("rename")
    assert (tmp_path / "checkpoints" / "step_00000000").is_dir()


def test_training_reduces_the_loss(tmp_path):
    trainer = Trainer(
        make_model(0),
        Pairs(),
        mse,
        TrainConfig(steps=60, batch_size=8, lr=1e-2, warmup_steps=5, checkpoint_every=60),
        tmp_path,
    )
    first = mse(trainer.unwrapped_model().eval(), {"x": Pairs().x, "y": Pairs().y})["loss"].item()
    trainer.train()
    last = mse(trainer.unwrapped_model().eval(), {"x": Pairs().x, "y": Pairs().y})["loss"].item()
    assert last < 0.2 * first


def test_sample_stream_is_a_pure_function_of_position():
    full = SampleStream(7, seed=1)
    it = iter(full)
    seq = [next(it) for _ in range(20)]
    assert sorted(seq[:7]) == list(range(7)) and sorted(seq[7:14]) == list(range(7))
    later = iter(SampleStream(7, seed=1, start=9))
    assert [next(later) for _ in range(11)] == seq[9:]
    ranks = [iter(SampleStream(7, seed=1, rank=r, world=2)) for r in (0, 1)]
    assert [next(ranks[0]) for _ in range(5)] == seq[0:10:2]
    assert [next(ranks[1]) for _ in range(5)] == seq[1:10:2]
