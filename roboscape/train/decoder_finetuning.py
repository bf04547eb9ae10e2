"""Stage two of tokenizer training (rule ``finetune_decoder``): the decoder alone, on the codes of
the frozen stage-one encoder and quantizer.

The tokens do not change, so the token shards and the world models trained on them stay valid,
while the decoder, no longer chasing a moving latent, learns to render those tokens more sharply.
With ``context`` (config ``tokenizer.decoder_context``) the new decoder also sees a real context
frame (see :mod:`roboscape.models.tokenizer`): it trains on frames paired with an earlier frame of
their clip, starting from stage one's decoder with its context inputs closed.
With ``decoder_channels`` other than stage one's width (config ``tokenizer.decoder_channels``) the
decoder is a narrower (or wider) one trained from scratch on the same tokens: rollouts decode
faster, at a cost in fidelity that its eval.json measures against stage one's.
Loss = L1 + ``perceptual_weight`` x perceptual distance, stage one's loss less the quantizer's. The
result is a whole tokenizer, encoder and quantizer bit-identical to stage one's, that decodes the
world models' rollouts; its eval.json has the held-out metrics before and after, on the same
out-of-domain frames (with context: the same pairs, and after stage two also what copying the
context frame scores); :func:`roboscape.report.tokenizer_figures.reconstruction_sheet` shows held-out
frames through both stages.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

from roboscape.models.perceptual import PerceptualDistance
from roboscape.models.tokenizer import Tokenizer, TokenizerOutput
from roboscape.train.tokenizer_training import (
    TokenizerRun,
    evaluate_tokenizer,
    tokenizer_loss,
)
from roboscape.train.trainer import TrainConfig, Trainer
from roboscape.utils.io import write_json
from roboscape.utils.provenance import file_digest


class FrozenEncoderTokenizer(nn.Module):
    """A tokenizer whose encoder and quantizer are frozen (and stay in eval mode): only the
    decoder learns. Its forward returns :class:`TokenizerOutput` with a zero quantizer loss."""

    def __init__(self, tokenizer: Tokenizer):
        super().__init__()
        self.tokenizer = tokenizer.requires_grad_(False)
        tokenizer.decoder.requires_grad_(True)

    def train(self, mode: bool = True) -> FrozenEncoderTokenizer:
        super().train(mode)
        self.tokenizer.encoder.eval()
        self.tokenizer.quantizer.eval()
        return self

    def forward(self, frames: torch.Tensor, context_frames: torch.Tensor | None = None) -> TokenizerOutput:
        with torch.no_grad():
            codes, tokens, _ = self.tokenizer.quantize(self.tokenizer.encoder(frames))
            context = self.tokenizer.decoder_context(context_frames)
        return TokenizerOutput(self.tokenizer.decoder(codes, context), tokens, frames.new_zeros(()))


def with_context_decoder(stage_one: Tokenizer) -> Tokenizer:
    """A tokenizer with ``decoder_context``, stage one's weights and closed context inputs."""
    tokenizer = Tokenizer(replace(stage_one.cfg, decoder_context=True))
    missing, unexpected = tokenizer.load_state_dict(stage_one.state_dict(), strict=False)
    if unexpected or not all(k.startswith(("decoder.context_", "decoder.keep_context_")) for k in missing):
        raise RuntimeError(
            f"stage one's weights do not fit a context decoder: missing {missing}, unexpected {unexpected}"
        )
    return tokenizer


def stage_two_tokenizer(stage_one: Tokenizer, context: bool, decoder_channels: int | None = None) -> Tokenizer:
    """The tokenizer stage two starts from: stage one's encoder and quantizer, and its decoder
    (with closed context inputs if ``context``) or, where ``decoder_channels`` gives the decoder
    another width than stage one's, a freshly initialised decoder of that width."""
    if decoder_channels is None or decoder_channels == stage_one.cfg.decoder_width:
        return with_context_decoder(stage_one) if context else copy.deepcopy(stage_one)
    tokenizer = Tokenizer(replace(stage_one.cfg, decoder_context=context, decoder_channels=decoder_channels))
    kept = {k: v for k, v in stage_one.state_dict().items() if not k.startswith("decoder.")}
    missing, unexpected = tokenizer.load_state_dict(kept, strict=False)
    if unexpected or not all(k.startswith("decoder.") for k in missing):
        raise RuntimeError(f"stage one's encoder does not fit: missing {missing}, unexpected {unexpected}")
    return tokenizer


def finetune_decoder(
    tokenizer_dir: str | Path,
    index_path: str | Path,
    out_dir: str | Path,
    train_cfg: TrainConfig,
    run: TokenizerRun | None = None,
    code_digest: str | None = None,
    context: bool = False,
    decoder_channels: int | None = None,
) -> dict:
    """Fine-tune the decoder of the tokenizer in ``tokenizer_dir`` (resuming from the last
    checkpoint of the same stage-one weights, configuration, data and code), save the whole
    tokenizer to ``out_dir/model`` and evaluate it against stage one on held-out frames. With
    ``context``, the new decoder also sees a context frame; ``decoder_channels``: its width (None:
    stage one's)."""
    out_dir, run = Path(out_dir), run or TokenizerRun()
    stage_one = Tokenizer.from_pretrained(tokenizer_dir)
    if stage_one.cfg.decoder_context:
        raise ValueError(f"{tokenizer_dir} already has a stage-two (context) decoder; give stage one's tokenizer")
    train_frames, held_out = run.frames(index_path, context=context)
    perceptual = PerceptualDistance(run.perceptual_backend)
    signature = {
        "stage_one": file_digest(Path(tokenizer_dir) / "model.safetensors"),
        "decoder_context": context,
        "decoder_channels": decoder_channels,
        **run.signature(index_path, code_digest),
    }

    # the decoder below trains in place: stage one stays for the comparison
    def build() -> FrozenEncoderTokenizer:
        return FrozenEncoderTokenizer(stage_two_tokenizer(stage_one, context, decoder_channels))

    trainer = Trainer(
        build, train_frames, tokenizer_loss(perceptual, run.perceptual_weight), train_cfg, out_dir, signature=signature
    )
    perceptual.to(trainer.accelerator.device)
    stage_one.to(trainer.accelerator.device)
    before = evaluate_tokenizer(stage_one, held_out, perceptual) if trainer.accelerator.is_main_process else None
    last = trainer.train()
    result = {"train": {"steps": trainer.step, "resumed_from_step": trainer.start_step, **last}}
    if trainer.accelerator.is_main_process:
        finetuned = trainer.unwrapped_model().tokenizer
        finetuned.save_pretrained(out_dir / "model")
        after = evaluate_tokenizer(finetuned, held_out, perceptual, score_copy_context=context)
        result["held_out_ood"] = {"stage_one": before, "finetuned": after}
        result["config"] = {
            "tokenizer": asdict(finetuned.cfg),
            "stage_one": str(tokenizer_dir),
            "train": asdict(train_cfg),
            **asdict(run),
            "decoder_context": context,
            "decoder_channels": decoder_channels,
        }
        write_json(out_dir / "eval.json", result)
    return result


def run_job(spec: dict) -> dict:
    """A training job (:mod:`roboscape.train.launch`): ``{"tokenizer_dir": stage one's model,
    "index": the clip index, "run": TokenizerRun fields, "train": TrainConfig fields,
    "decoder_context": bool, "decoder_channels": int or None, "out_dir": ..., "code_digest": ...}``."""
    return finetune_decoder(
        spec["tokenizer_dir"],
        spec["index"],
        spec["out_dir"],
        TrainConfig(**spec["train"]),
        TokenizerRun(**spec.get("run", {})),
        code_digest=spec.get("code_digest"),
        context=spec.get("decoder_context", False),
        decoder_channels=spec.get("decoder_channels"),
    )
