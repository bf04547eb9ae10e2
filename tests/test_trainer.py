"""The Accelerate training loop: resume after an interruption, metrics, model files."""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from roboscape.models.tokenizer import Tokenizer, TokenizerConfig
from roboscape.train.checkpoint import load_pretrained, save_pretrained
from roboscape.train.trainer import SampleStream, TrainConfig, Trainer
from roboscape.utils.io import read_json


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


def test_checkpoints_of_another_configuration_are_not_resumed(tmp_path):
    Trainer(make_model(0), Pairs(), mse, CFG, tmp_path).train(stop_after=4)
    other = TrainConfig(**{**CFG.__dict__, "lr": 5e-3})
    fresh = Trainer(make_model(0), Pairs(), mse, other, tmp_path)
    fresh.train(stop_after=1)
    assert fresh.step == 1  # started afresh, not at step 4
    assert list(tmp_path.glob("checkpoints.stale-*"))


def test_training_reduces_the_loss(tmp_path):
    trainer = Trainer(make_model(0), Pairs(), mse, TrainConfig(steps=60, batch_size=8, lr=1e-2, warmup_steps=5, checkpoint_every=60), tmp_path)
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


def test_model_files_round_trip(tmp_path):
    model = Tokenizer(TokenizerConfig(image_size=16, downsample_factor=2, base_channels=16, codebook_bits=6)).eval()
    save_pretrained(model, "tokenizer", tmp_path / "tok")
    assert {p.name for p in (tmp_path / "tok").iterdir()} == {"model.safetensors", "config.json"}
    loaded = load_pretrained(tmp_path / "tok")
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert loaded.cfg == model.cfg
    assert torch.equal(loaded.encode(x), model.encode(x))


def fake_clip_index(tmp_path):
    """A clip index over two fake shards, each with one in-domain and one out-of-domain episode."""
    from test_clips import write_fake_shard

    from roboscape.data.clips import ClipConfig, cut_clips, merge_indices

    parts = []
    for k in range(2):
        traj = write_fake_shard(tmp_path / f"t{k}.h5", [9, 9], size=32, seed=k)
        idx, _ = cut_clips(traj, tmp_path / f"c{k}.h5", ClipConfig(clip_length=5, stride=5))
        idx.to_csv(tmp_path / f"p{k}.csv", index=False)
        parts.append((tmp_path / f"p{k}.csv", tmp_path / f"c{k}.h5"))
    merge_indices(parts, tmp_path / "index.csv")
    return tmp_path / "index.csv"


def test_context_frames_are_earlier_frames_of_the_same_clip(tmp_path):
    from roboscape.data.frames import ContextFrameDataset, FrameDataset

    index = fake_clip_index(tmp_path)
    plain, paired = FrameDataset(index), ContextFrameDataset(index, seed=3)
    assert len(plain) == len(paired) == 4 * 5
    offsets = []
    for i in range(len(paired)):
        item, clip, t = paired[i], i // 5, i % 5
        offsets.append(paired.context_offset(i))
        assert torch.equal(item["frames"], plain[i]) and 0 <= offsets[-1] <= t
        assert torch.equal(item["context"], plain[clip * 5 + offsets[-1]])
    assert offsets == [ContextFrameDataset(index, seed=3).context_offset(i) for i in range(len(paired))]
    assert len(set(offsets)) > 1


def test_train_tokenizer_writes_model_metrics_and_held_out_eval(tmp_path):
    import json

    from roboscape.train.tokenizer_training import train_tokenizer

    tok = TokenizerConfig(image_size=32, downsample_factor=4, base_channels=16, codebook_bits=6)
    result = train_tokenizer(fake_clip_index(tmp_path), tmp_path / "out", tok, TrainConfig(steps=4, batch_size=4, checkpoint_every=2, log_every=1))
    saved = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert saved["train"]["steps"] == 4 == result["train"]["steps"]
    ev = saved["held_out_ood"]
    assert ev["frames"] == 4 * 5  # OOD only: 2 episodes x 2 clips x 5 frames
    assert 0 < ev["psnr"] < 60 and -1 <= ev["ssim"] <= 1 and ev["perceptual"] >= 0
    assert 0 < ev["codebook_utilisation"] <= 1
    assert load_pretrained(tmp_path / "out" / "model").cfg == tok


@pytest.mark.parametrize("context", [False, True])
def test_decoder_finetuning_changes_the_decoder_only(tmp_path, context):
    from dataclasses import replace

    from roboscape.data.frames import FrameDataset
    from roboscape.models.world_model import WorldModel, WorldModelConfig
    from roboscape.train.decoder_finetuning import FrozenEncoderTokenizer, finetune_decoder
    from roboscape.train.tokenizer_training import train_tokenizer

    index = fake_clip_index(tmp_path)
    tok = TokenizerConfig(image_size=32, downsample_factor=4, base_channels=16, codebook_bits=6)
    train_tokenizer(index, tmp_path / "stage_one", tok, TrainConfig(steps=2, batch_size=4, log_every=1))
    result = finetune_decoder(tmp_path / "stage_one" / "model", index, tmp_path / "stage_two",
                              TrainConfig(steps=3, batch_size=4, lr=1e-3, warmup_steps=1, checkpoint_every=2, log_every=1),
                              context=context)
    assert result["train"]["steps"] == 3 and result["train"]["quantizer"] == 0
    before, after = load_pretrained(tmp_path / "stage_one" / "model"), load_pretrained(tmp_path / "stage_two" / "model")
    assert after.cfg == replace(before.cfg, decoder_context=context)
    for name, value in before.state_dict().items():
        unchanged = torch.equal(value, after.state_dict()[name])
        assert unchanged != name.startswith("decoder."), name
    frames = torch.stack([FrameDataset(index, split="ood")[i] for i in range(6)])
    assert torch.equal(after.encode(frames), before.encode(frames))  # the token shards stay valid
    ev = read_json(tmp_path / "stage_two" / "eval.json")["held_out_ood"]
    assert ev["stage_one"]["frames"] == ev["finetuned"]["frames"] == 4 * 5
    assert ev["finetuned"]["psnr"] != ev["stage_one"]["psnr"]
    assert ("copy_context" in ev["finetuned"]) == context
    assert (tmp_path / "stage_two" / "reconstructions.png").stat().st_size > 10_000
    if context:
        with pytest.raises(ValueError, match="already has a stage-two"):
            finetune_decoder(tmp_path / "stage_two" / "model", index, tmp_path / "again", TrainConfig(steps=1), context=True)
        return

    frozen = FrozenEncoderTokenizer(before).train()
    assert frozen.tokenizer.decoder.training and not frozen.tokenizer.encoder.training
    assert all(p.requires_grad == n.startswith("tokenizer.decoder.") for n, p in frozen.named_parameters())
    save_pretrained(WorldModel(WorldModelConfig(codebook_size=64, tokens_hw=2, dim=16, depth=1, heads=2)), "world_model", tmp_path / "wm")
    with pytest.raises(TypeError, match="not a tokenizer"):
        finetune_decoder(tmp_path / "wm", index, tmp_path / "bad", TrainConfig(steps=1))


def test_the_same_config_trains_the_same_tokenizer_and_decoder_whatever_ran_before(tmp_path):
    from roboscape.train.decoder_finetuning import finetune_decoder
    from roboscape.train.tokenizer_training import train_tokenizer

    index = fake_clip_index(tmp_path)
    tok = TokenizerConfig(image_size=32, downsample_factor=4, base_channels=16, codebook_bits=6)
    cfg = TrainConfig(steps=1, batch_size=4, log_every=1)
    for run, global_seed in (("a", 1), ("b", 2)):  # what a process did before must not matter
        torch.manual_seed(global_seed)
        train_tokenizer(index, tmp_path / run / "stage_one", tok, cfg)
        torch.manual_seed(global_seed)
        finetune_decoder(tmp_path / run / "stage_one" / "model", index, tmp_path / run / "stage_two", cfg, context=True)
    for stage in ("stage_one", "stage_two"):
        a, b = (load_pretrained(tmp_path / run / stage / "model").state_dict() for run in ("a", "b"))
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=stage)  # the same keys, exactly the same values
