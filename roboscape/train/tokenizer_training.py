"""Training and evaluating the tokenizer on the clips' frames (rule ``train_tokenizer``).

Loss = L1 reconstruction + ``perceptual_weight`` x perceptual distance + the quantizer's own
loss (LFQ: entropy + commitment). Held-out evaluation runs on frames of the out-of-domain
scenes, which training never sees: PSNR, SSIM, perceptual distance, codebook utilisation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from roboscape.data.frames import ContextFrameDataset, FrameDataset
from roboscape.models.image_metrics import codebook_utilisation, psnr, ssim
from roboscape.models.perceptual import PerceptualDistance
from roboscape.models.tokenizer import Tokenizer, TokenizerConfig
from roboscape.train.trainer import TrainConfig, Trainer
from roboscape.utils.io import write_json


@dataclass
class TokenizerRun:
    """A tokenizer job's data and loss options (both stages): the frames of one camera view, every
    ``frame_stride``-th; ``eval_frames`` held-out frames; the perceptual term of the loss."""

    view: str = "third_view"
    perceptual_backend: str = "stlpips"
    perceptual_weight: float = 0.1
    frame_stride: int = 2
    eval_frames: int | None = 512

    def frames(self, index_path: str | Path, context: bool = False) -> tuple[Dataset, Dataset]:
        """Training frames (in-domain scenes) and held-out frames (out-of-domain, evenly spaced);
        with ``context``, each with a context frame (:class:`ContextFrameDataset`)."""
        dataset = ContextFrameDataset if context else FrameDataset
        train = dataset(index_path, view=self.view, split="ind", frame_stride=self.frame_stride)
        held_out = dataset(index_path, view=self.view, split="ood", frame_stride=self.frame_stride)
        return train, evenly_spaced(held_out, self.eval_frames)

    def signature(self, index_path: str | Path, code_digest: str | None) -> dict:
        """What, besides the model, defines a run (checkpoints of another signature are not resumed)."""
        return {
            "view": self.view,
            "perceptual": [self.perceptual_backend, self.perceptual_weight],
            "frame_stride": self.frame_stride,
            "index": str(Path(index_path).resolve()),
            "code": code_digest,
        }


def split_batch(batch: torch.Tensor | dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(frames, context frames or None) of a batch of frames or of :class:`ContextFrameDataset`."""
    return (batch["frames"], batch["context"]) if isinstance(batch, dict) else (batch, None)


def tokenizer_loss(perceptual: PerceptualDistance, perceptual_weight: float):
    def compute(model: Tokenizer, batch: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        frames, context = split_batch(batch)
        out = model(frames, context)
        recon = out.reconstruction
        l1 = (recon - frames).abs().mean()
        p = perceptual(recon.clamp(-1, 1), frames).mean() if perceptual_weight > 0 else recon.new_zeros(())
        return {
            "loss": l1 + perceptual_weight * p + out.quantizer_loss,
            "l1": l1,
            "perceptual": p,
            "quantizer": out.quantizer_loss,
        }

    return compute


@torch.no_grad()
def evaluate_tokenizer(
    model: Tokenizer,
    frames: Dataset,
    perceptual: PerceptualDistance,
    batch_size: int = 32,
    score_copy_context: bool = False,
) -> dict:
    """Reconstruction metrics on ``frames``; where its items have context frames, a decoder with
    ``decoder_context`` decodes with them, and with ``score_copy_context`` the result's
    ``copy_context`` scores the context frames themselves as the reconstruction (what a decoder
    that only copied them would get)."""
    model.eval()
    sums: dict[str, dict[str, float]] = {}
    tokens = []
    n = 0
    device = next(model.parameters()).device
    for batch in DataLoader(frames, batch_size=batch_size):
        x, context = split_batch(batch)
        x = x.to(device)
        context = None if context is None else context.to(device)
        out = model(x, context)
        candidates = {"reconstruction": out.reconstruction.clamp(-1, 1)}
        if score_copy_context:
            if context is None:
                raise ValueError("score_copy_context needs frames with context frames (ContextFrameDataset)")
            candidates["copy_context"] = context
        for name, pred in candidates.items():
            s = sums.setdefault(name, {"psnr": 0.0, "ssim": 0.0, "perceptual": 0.0})
            s["psnr"] += float(psnr(pred, x).sum())
            s["ssim"] += float(ssim(pred, x).sum())
            s["perceptual"] += float(perceptual(pred, x).sum())
        tokens.append(out.tokens.cpu())
        n += len(x)
    if n == 0:
        raise ValueError("no held-out frames to evaluate the tokenizer on")
    copied = {"copy_context": {k: v / n for k, v in sums["copy_context"].items()}} if "copy_context" in sums else {}
    return {
        **{k: v / n for k, v in sums["reconstruction"].items()},
        "codebook_utilisation": codebook_utilisation(torch.cat(tokens), model.cfg.codebook_size),
        "frames": n,
        **copied,
    }


def evenly_spaced(ds: Dataset, n: int | None) -> Dataset:
    if n is None or n >= len(ds):
        return ds
    return Subset(ds, torch.linspace(0, len(ds) - 1, n).round().long().tolist())


def train_tokenizer(
    index_path: str | Path,
    out_dir: str | Path,
    tokenizer_cfg: TokenizerConfig,
    train_cfg: TrainConfig,
    run: TokenizerRun | None = None,
    code_digest: str | None = None,
) -> dict:
    """Train (resuming from the last checkpoint of the same configuration, data and code --
    ``code_digest``, see :mod:`roboscape.utils.provenance`), save the model, evaluate it."""
    out_dir, run = Path(out_dir), run or TokenizerRun()
    train_frames, held_out = run.frames(index_path)
    perceptual = PerceptualDistance(run.perceptual_backend)
    signature = {"tokenizer": asdict(tokenizer_cfg), **run.signature(index_path, code_digest)}
    trainer = Trainer(
        lambda: Tokenizer(tokenizer_cfg),
        train_frames,
        tokenizer_loss(perceptual, run.perceptual_weight),
        train_cfg,
        out_dir,
        signature=signature,
    )
    perceptual.to(trainer.accelerator.device)
    last = trainer.train()
    result = {"train": {"steps": trainer.step, "resumed_from_step": trainer.start_step, **last}}
    if trainer.accelerator.is_main_process:
        model = trainer.unwrapped_model()
        model.save_pretrained(out_dir / "model")
        result["held_out_ood"] = evaluate_tokenizer(model, held_out, perceptual)
        result["config"] = {"tokenizer": asdict(tokenizer_cfg), "train": asdict(train_cfg), **asdict(run)}
        write_json(out_dir / "eval.json", result)
    return result


def run_job(spec: dict) -> dict:
    """A training job (:mod:`roboscape.train.launch`): ``{"tokenizer": TokenizerConfig fields,
    "index": the clip index, "run": TokenizerRun fields, "train": TrainConfig fields, "out_dir": ...,
    "code_digest": ...}``."""
    return train_tokenizer(
        spec["index"],
        spec["out_dir"],
        TokenizerConfig(**spec["tokenizer"]),
        TrainConfig(**spec["train"]),
        TokenizerRun(**spec.get("run", {})),
        code_digest=spec.get("code_digest"),
    )
