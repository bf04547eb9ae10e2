"""Training the tokenizer (stage one) and fine-tuning its decoder on frozen tokens (stage two)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from roboscape.data.frames import FrameDataset
from roboscape.models.tokenizer import Tokenizer, TokenizerConfig
from roboscape.models.world_model import WorldModel, WorldModelConfig
from roboscape.train.decoder_finetuning import FrozenEncoderTokenizer, finetune_decoder
from roboscape.train.tokenizer_training import TokenizerRun, train_tokenizer
from roboscape.train.trainer import TrainConfig
from roboscape.utils.io import read_json

from fakes import fake_clip_index

EVERY_FRAME = TokenizerRun(frame_stride=1)  # the fake clips are short: train and evaluate on every frame


def test_train_tokenizer_writes_model_metrics_and_held_out_eval(tmp_path):
    tok = TokenizerConfig(image_size=32, downsample_factor=4, base_channels=16, codebook_bits=6)
    result = train_tokenizer(
        fake_clip_index(tmp_path),
        tmp_path / "out",
        tok,
        TrainConfig(steps=4, batch_size=4, checkpoint_every=2, log_every=1),
        EVERY_FRAME,
    )
    saved = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert saved["train"]["steps"] == 4 == result["train"]["steps"]
    ev = saved["held_out_ood"]
    assert ev["frames"] == 4 * 5  # OOD only: 2 episodes x 2 clips x 5 frames
    assert 0 < ev["psnr"] < 60 and -1 <= ev["ssim"] <= 1 and ev["perceptual"] >= 0
    assert 0 < ev["codebook_utilisation"] <= 1
    assert Tokenizer.from_pretrained(tmp_path / "out" / "model").cfg == tok


@pytest.mark.parametrize("context", [False, True])
def test_decoder_finetuning_changes_the_decoder_only(tmp_path, context):
    index = fake_clip_index(tmp_path)
    tok = TokenizerConfig(image_size=32, downsample_factor=4, base_channels=16, codebook_bits=6)
    train_tokenizer(index, tmp_path / "stage_one", tok, TrainConfig(steps=2, batch_size=4, log_every=1), EVERY_FRAME)
    result = finetune_decoder(
        tmp_path / "stage_one" / "model",
        index,
        tmp_path / "stage_two",
        TrainConfig(steps=3, batch_size=4, lr=1e-3, warmup_steps=1, checkpoint_every=2, log_every=1),
        EVERY_FRAME,
        context=context,
    )
    assert result["train"]["steps"] == 3 and result["train"]["quantizer"] == 0
    before, after = (
        Tokenizer.from_pretrained(tmp_path / "stage_one" / "model"),
        Tokenizer.from_pretrained(tmp_path / "stage_two" / "model"),
    )
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
    if context:
        with pytest.raises(ValueError, match="already has a stage-two"):
            finetune_decoder(
                tmp_path / "stage_two" / "model", index, tmp_path / "again", TrainConfig(steps=1), context=True
            )
        return

    frozen = FrozenEncoderTokenizer(before).train()
    assert frozen.tokenizer.decoder.training and not frozen.tokenizer.encoder.training
    assert all(p.requires_grad == n.startswith("tokenizer.decoder.") for n, p in frozen.named_parameters())
    WorldModel(WorldModelConfig(codebook_size=64, tokens_hw=2, dim=16, depth=1, heads=2)).save_pretrained(
        tmp_path / "wm"
    )
    with pytest.raises(ValueError, match="not a 'tokenizer'"):
        finetune_decoder(tmp_path / "wm", index, tmp_path / "bad", TrainConfig(steps=1))


def test_a_narrower_stage_two_decoder_keeps_the_tokens_and_decodes_them(tmp_path):
    index = fake_clip_index(tmp_path)
    tok = TokenizerConfig(image_size=32, downsample_factor=4, base_channels=16, codebook_bits=6)
    train_tokenizer(index, tmp_path / "stage_one", tok, TrainConfig(steps=2, batch_size=4, log_every=1), EVERY_FRAME)
    cfg = TrainConfig(steps=2, batch_size=4, warmup_steps=1, log_every=1)
    finetune_decoder(
        tmp_path / "stage_one" / "model", index, tmp_path / "narrow", cfg, EVERY_FRAME, context=True, decoder_channels=8
    )
    before, after = (Tokenizer.from_pretrained(tmp_path / d / "model") for d in ("stage_one", "narrow"))
    assert after.cfg == replace(before.cfg, decoder_context=True, decoder_channels=8)
    assert after.decoder.conv_out.in_channels == 8 and before.decoder.conv_out.in_channels == 16
    encoder = [n for n in before.state_dict() if not n.startswith("decoder.")]
    assert encoder and all(torch.equal(before.state_dict()[n], after.state_dict()[n]) for n in encoder)
    frames = torch.stack([FrameDataset(index, split="ood")[i] for i in range(4)])
    tokens = after.encode(frames)
    assert torch.equal(tokens, before.encode(frames))
    decoded = after.decode_tokens(tokens, after.decoder_context(frames, tokens))
    assert decoded.shape == frames.shape
    ev = read_json(tmp_path / "narrow" / "eval.json")
    assert ev["config"]["decoder_channels"] == 8 and ev["held_out_ood"]["finetuned"]["frames"] == 4 * 5


def test_the_same_config_trains_the_same_tokenizer_and_decoder_whatever_ran_before(tmp_path):
    index = fake_clip_index(tmp_path)
    tok = TokenizerConfig(image_size=32, downsample_factor=4, base_channels=16, codebook_bits=6)
    cfg = TrainConfig(steps=1, batch_size=4, log_every=1)
    for run, global_seed in (("a", 1), ("b", 2)):  # what a process did before must not matter
        torch.manual_seed(global_seed)
        train_tokenizer(index, tmp_path / run / "stage_one", tok, cfg)
        torch.manual_seed(global_seed)
        finetune_decoder(tmp_path / run / "stage_one" / "model", index, tmp_path / run / "stage_two", cfg, context=True)
    for stage in ("stage_one", "stage_two"):
        a, b = (Tokenizer.from_pretrained(tmp_path / run / stage / "model").state_dict() for run in ("a", "b"))
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=stage)  # the same keys, exactly the same values
