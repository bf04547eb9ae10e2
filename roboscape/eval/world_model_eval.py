"""Evaluating a world model on held-out clips (rule ``eval_wm``).

Per subset (``heldout``: in-domain scenes, unseen episodes; ``ood``: out-of-domain scenes), on
the recorded attempts at the task of the kinds the model trained on (exploratory recordings, when
it trained on them, are not scored here: the controllability rule scores such actions against the
simulator, and leaving them out keeps these scores comparable with and without them):

- teacher-forced token accuracy and cross-entropy over windows, next to the accuracy of copying
  the previous frame's tokens;
- done signal of frame t+1 (predicted with it): F1 at ``done_threshold`` and RMSE;
- open-loop rollouts from the real first frame of each clip with its recorded actions (or its
  instruction, for the text WM) over ``horizon`` world-model steps (``frame_skip`` recorded frames
  each; at most what a clip holds), single-sample (one greedy or seeded
  rollout per clip; iVideoGPT reports the best of N samples): PSNR, SSIM and perceptual
  distance against the ground truth, per step and averaged, next to two floors -- copying the
  last observed frame (the real first frame) and copying its tokenized reconstruction -- and the
  tokenizer's own reconstruction of the ground truth (a ceiling for any token model). A decoder
  with ``decoder_context`` decodes all three token predictions with the real first frame, the
  frame the copy floor copies. Margins
  over the floor say by how much the model beats it (negative: it does not), with their standard
  error (paired: each clip's model and floor scores over the horizon) clustered by episode --
  clips of one episode overlap and share its scene and motion, so they are not independent
  samples -- next to the naive one over clips, and the fraction of clips on which the model is
  better. Each clip's scores are kept too, so that two models evaluated on the same clips compare
  paired (:mod:`roboscape.eval.paired`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from roboscape.data.dataset import ClipDataset
from roboscape.data.frames import to_model_range, to_uint8
from roboscape.data.token_windows import TokenWindowDataset, WorldModelData
from roboscape.models.control import TextControl, control_inputs
from roboscape.models.image_metrics import psnr, ssim
from roboscape.models.perceptual import PerceptualDistance
from roboscape.models.precision import precision_autocast
from roboscape.models.rollout import Rollout, RolloutSettings
from roboscape.models.text_encoder import load_instruction_cache
from roboscape.models.tokenizer import Tokenizer
from roboscape.models.world_model import WorldModel, predict_tokens, token_nll
from roboscape.sim.trajectory_io import EXPLORATORY
from roboscape.utils.stats import clustered_standard_error

HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "perceptual": False}


@dataclass
class EvalConfig:
    clips: int = 128  # held-out clips per subset for open-loop rollouts
    horizon: int = 20  # world-model steps per rollout (at most what a clip holds)
    windows: int = 64  # teacher-forced windows per subset
    done_threshold: float = 0.5
    temperature: float = 0.0  # 0: greedy
    guidance: float = 1.0  # action WM: classifier-free guidance scale of its rollouts (roboscape.models.rollout)
    guidance_positions: str = "all"  # action WM: where guidance applies, all positions or hidden motion only
    precision: str = "fp32"  # the world model's forward pass in rollouts: fp32, bf16 or auto (roboscape.models.rollout)
    batch_size: int = 8
    seed: int = 0


def evenly_spaced(n: int, k: int) -> list[int]:
    return sorted(set(np.linspace(0, n - 1, min(n, k)).round().astype(int).tolist()))


def binary_f1(prob: torch.Tensor, label: torch.Tensor, threshold: float) -> dict[str, float]:
    pred, truth = prob >= threshold, label >= 0.5
    tp = int((pred & truth).sum())
    fp, fn = int((pred & ~truth).sum()), int((~pred & truth).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": f1, "precision": precision, "recall": recall, "positives": int(truth.sum()), "n": int(truth.numel())}


@torch.no_grad()
def teacher_forced(wm: WorldModel, windows: TokenWindowDataset, text: TextControl | None, cfg: EvalConfig) -> dict:
    device = next(wm.parameters()).device
    picked = Subset(windows, evenly_spaced(len(windows), cfg.windows))
    ce_sum = correct = copy_correct = n_tokens = 0.0
    done_p, done_y = [], []
    for batch in DataLoader(picked, batch_size=cfg.batch_size):
        batch = {k: v.to(device) for k, v in batch.items()}
        tokens = batch["tokens"]
        with precision_autocast(cfg.precision, device.type):  # as the rollouts compute
            out = wm(tokens, *control_inputs(batch, text), clock=batch["clock"])
        logits, target = out.logits[:, :-1].float(), tokens[:, 1:]
        ce_sum += float(token_nll(logits, target, wm.cfg.token_target).sum())
        correct += float((predict_tokens(logits, wm.cfg.token_target) == target).sum())
        copy_correct += float((tokens[:, :-1] == target).sum())
        n_tokens += target.numel()
        done_p.append(out.done[:, :-1].flatten().float().cpu())
        done_y.append(batch["done"][:, 1:].flatten().cpu())
    p, y = torch.cat(done_p), torch.cat(done_y)
    return {
        "windows": len(picked),
        "token_cross_entropy": ce_sum / n_tokens,
        "token_accuracy": correct / n_tokens,
        "copy_last_frame_token_accuracy": copy_correct / n_tokens,
        "done": {"rmse": float(torch.sqrt(((p - y) ** 2).mean())), **binary_f1(p, y, cfg.done_threshold)},
    }


def frame_metrics(pred: torch.Tensor, truth: torch.Tensor, perceptual: PerceptualDistance) -> dict[str, torch.Tensor]:
    """Per-frame PSNR, SSIM and perceptual distance of (N, 3, H, W) frames in [-1, 1]."""
    return {"psnr": psnr(pred, truth), "ssim": ssim(pred, truth), "perceptual": perceptual(pred, truth)}


@torch.no_grad()
def open_loop(
    wm: WorldModel,
    tokenizer: Tokenizer,
    windows: TokenWindowDataset,
    clips: ClipDataset,
    view: str,
    text: TextControl | None,
    perceptual: PerceptualDistance,
    cfg: EvalConfig,
) -> tuple[dict, dict]:
    """Returns (metrics, media): media holds uint8 ground truth and predictions for figures."""
    device = next(wm.parameters()).device
    horizon, skip = min(cfg.horizon, windows.steps_per_clip), windows.frame_skip
    chosen = evenly_spaced(len(windows.index), cfg.clips)
    curves: dict[str, dict[str, list[torch.Tensor]]] = {}
    media: dict[str, list[np.ndarray]] = {"truth": [], "model": []}
    rollout = Rollout.from_settings(wm, tokenizer, cfg)
    for start in range(0, len(chosen), cfg.batch_size):
        batch = chosen[start : start + cfg.batch_size]
        # frames 0, k, .., Hk: (B, H+1, h, w, 3)
        truth = torch.stack(
            [clips[r]["rgb"][view][: horizon * skip + 1 : skip] for r in clip_rows(clips, windows, batch)]
        )
        truth = to_model_range(truth.flatten(0, 1)).view(len(batch), horizon + 1, 3, *truth.shape[2:4]).to(device)
        first = truth[:, 0]
        clock = torch.stack([windows.clock(c, 0, 1)[0] for c in batch])
        if text is None:
            actions = torch.stack([windows.clip_steps(c)["actions"][:horizon] for c in batch]).to(device)
            first_tokens = rollout.reset(first, clock=clock)
        else:
            rows = torch.as_tensor(windows.instruction_rows[batch], device=device)
            first_tokens = rollout.reset(first, *text(rows), clock=clock)
        context = tokenizer.decoder_context(first, first_tokens)  # None for a per-frame decoder
        first_recon = tokenizer.decode_tokens(first_tokens, context)
        predicted = []
        for t in range(horizon):
            step = rollout.step(actions[:, t] if text is None else None)
            predicted.append(step.frames.clamp(-1, 1))
        predicted = torch.stack(predicted, dim=1)
        for t in range(horizon):
            gt = truth[:, t + 1]
            candidates = {
                "model": predicted[:, t],
                "copy_last_frame": first,
                "copy_last_frame_tokenized": first_recon,
                "tokenizer_reconstruction": tokenizer.decode_tokens(tokenizer.encode(gt), context),
            }
            for name, pred in candidates.items():
                for metric, values in frame_metrics(pred, gt, perceptual).items():
                    curves.setdefault(name, {}).setdefault(metric, [[] for _ in range(horizon)])[t].append(values.cpu())
        media["truth"].append(to_uint8(truth[:, 1:]).cpu().numpy())
        media["model"].append(to_uint8(predicted).cpu().numpy())
    # (clips, horizon) per predictor and metric
    per_clip = {
        name: {m: torch.stack([torch.cat(v) for v in steps], dim=1).double() for m, steps in ms.items()}
        for name, ms in curves.items()
    }
    per_step = {name: {m: v.mean(0).tolist() for m, v in ms.items()} for name, ms in per_clip.items()}
    mean = {name: {m: float(np.mean(v)) for m, v in ms.items()} for name, ms in per_step.items()}
    # paired per clip (each clip's mean over the horizon), positive where the model is better
    clip_margins = {
        floor: {
            m: (per_clip["model"][m] - per_clip[floor][m]).mean(1) * (1 if HIGHER_IS_BETTER[m] else -1)
            for m in HIGHER_IS_BETTER
        }
        for floor in ("copy_last_frame", "copy_last_frame_tokenized")
    }
    margin = {floor: {m: float(v.mean()) for m, v in ms.items()} for floor, ms in clip_margins.items()}
    episodes = list(
        zip(windows.index["scene_id"].iloc[chosen], windows.index["episode_seed"].iloc[chosen], strict=True)
    )

    def margin_se(clusters: list) -> dict:
        return {
            floor: {m: clustered_standard_error(v.numpy(), clusters) for m, v in ms.items()}
            for floor, ms in clip_margins.items()
        }

    clips_better = {
        floor: {m: float((v > 0).double().mean()) for m, v in ms.items()} for floor, ms in clip_margins.items()
    }
    metrics = {
        "clips": len(chosen),
        "episodes": len(set(episodes)),
        "horizon": horizon,
        "frame_skip": skip,
        "samples_per_clip": 1,
        "sampling": ("greedy" if cfg.temperature <= 0 else f"temperature {cfg.temperature}")
        + (f", guidance {cfg.guidance:g}" if cfg.guidance != 1 else ""),
        "mean": mean,
        "per_step": per_step,
        "margin_over_floor": margin,  # positive: the model is better than the floor
        "margin_standard_error": margin_se(episodes),  # paired, clustered by episode
        "margin_standard_error_over_clips": margin_se(list(range(len(chosen)))),  # paired, as if clips were independent
        "fraction_of_clips_better": clips_better,
        "beats_floor": {floor: {m: v > 0 for m, v in ms.items()} for floor, ms in margin.items()},
        # each clip's mean over the horizon, so that two models on the same clips compare paired
        # (roboscape.eval.paired)
        "per_clip": {
            "clip": [int(c) for c in chosen],
            "scene_id": [str(e[0]) for e in episodes],
            "episode_seed": [int(e[1]) for e in episodes],
            "model": {m: per_clip["model"][m].mean(1).tolist() for m in HIGHER_IS_BETTER},
        },
    }
    return metrics, {k: np.concatenate(v) for k, v in media.items()}


def clip_rows(clips: ClipDataset, windows: TokenWindowDataset, chosen: list[int]) -> list[int]:
    """Rows of ``clips`` holding the frames of ``windows``' clips ``chosen`` (matched by clip id)."""
    row_of_clip = dict(zip(clips.index["clip_id"], range(len(clips.index)), strict=True))
    return [row_of_clip[c] for c in windows.index["clip_id"].iloc[chosen]]


@torch.no_grad()
def controllability(
    wm: WorldModel,
    tokenizer: Tokenizer,
    first_frames: torch.Tensor,
    horizon: int,
    settings: RolloutSettings,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Rollouts of the action WM from the same start frames under hand-made action sequences
    (the paper's Fig. 9): each translation axis held at the trained extreme in both directions,
    no motion, twice the trained range (out of distribution: clipped and counted) and uniform
    random actions in range, ``horizon`` steps, with the rollout settings of the open-loop
    evaluation beside it. Returns (summary, sequence name -> uint8 frames (N, T, H, W, 3))."""
    cfg = wm.cfg
    device = first_frames.device
    low = torch.tensor(cfg.action_low or [-1.0] * cfg.action_dim, device=device)
    high = torch.tensor(cfg.action_high or [1.0] * cfg.action_dim, device=device)
    rest = torch.tensor(cfg.action_mean or [0.0] * cfg.action_dim, device=device)
    rest[:6] = 0.0  # no motion; the gripper keeps its mean command
    n = first_frames.shape[0]
    generator = torch.Generator(device="cpu").manual_seed(0)
    sequences: dict[str, torch.Tensor] = {"no motion": rest.expand(horizon, -1)}
    for axis, name in enumerate("xyz"):
        for sign, bound in (("+", high), ("-", low)):
            a = rest.clone()
            a[axis] = bound[axis]
            sequences[f"{sign}{name} at trained extreme"] = a.expand(horizon, -1)
    ood = rest.clone()
    ood[:3] = 2 * high[:3]
    sequences["2x trained range (+xyz, clipped)"] = ood.expand(horizon, -1)
    sequences["uniform random in range"] = low + (high - low) * torch.rand(
        horizon, cfg.action_dim, generator=generator
    ).to(device)
    rollout = Rollout.from_settings(wm, tokenizer, settings)
    frames: dict[str, np.ndarray] = {}
    finals: dict[str, torch.Tensor] = {}
    for name, seq in sequences.items():
        rollout.reset(first_frames)
        out = [rollout.step(seq[t].expand(n, -1)).frames for t in range(horizon)]
        frames[name] = to_uint8(torch.stack(out, dim=1)).cpu().numpy()
        finals[name] = out[-1]
    clipped = rollout.clipped_actions
    # How far apart the final frames are under opposite commands, in [0, 1] pixel units: an
    # action-blind model scores 0.
    spread = {
        axis: float((finals[f"+{axis} at trained extreme"] - finals[f"-{axis} at trained extreme"]).abs().mean()) / 2
        for axis in "xyz"
    }
    summary = {
        "sequences": list(sequences),
        "horizon": horizon,
        "start_frames": n,
        "mean_abs_pixel_difference_between_opposite_extremes": spread,
        "clipped_action_steps_in_ood_sequence": clipped,
    }
    return summary, frames


def evaluate_world_model(
    wm_dir: str | Path,
    tokenizer_dir: str | Path,
    data: WorldModelData,
    clip_index: str | Path,
    cfg: EvalConfig,
    view: str = "third_view",
    perceptual_backend: str = "stlpips",
) -> tuple[dict, dict]:
    """Everything above on both held-out subsets. Returns the result (``eval.json``) and the media
    the figures show (:func:`roboscape.report.rollout_figures.world_model_figures`): per subset its
    per-step curves and uint8 ground truth and rollouts, and for the action WM the controllability
    rollouts (sequence name -> (N, T, H, W, 3))."""
    torch.manual_seed(cfg.seed)
    wm, tokenizer = WorldModel.from_pretrained(wm_dir), Tokenizer.from_pretrained(tokenizer_dir)
    text, instructions = None, None
    if wm.cfg.control == "text":
        instructions, states, mask = load_instruction_cache(data.instruction_cache)
        text = TextControl(states, mask)
    perceptual = PerceptualDistance(perceptual_backend)
    clips = ClipDataset(clip_index, views=(view,))
    control = wm.cfg.control
    labels = None if data.trajectory_labels is None else [k for k in data.trajectory_labels if k != EXPLORATORY]
    result: dict = {
        "model": str(wm_dir),
        "control": control,
        "view": view,
        "perceptual_backend": perceptual_backend,
        "trajectory_labels": labels or "all",
        "config": asdict(cfg),
    }
    subsets = {
        subset: TokenWindowDataset(
            data.token_index,
            wm.cfg.window,
            subset,
            data.heldout_every,
            wm.cfg.window,
            instructions,
            frame_skip=wm.cfg.frame_skip,
            labels=labels,
        )
        for subset in ("heldout", "ood")
    }
    media: dict = {}
    for subset, windows in subsets.items():
        metrics, media[subset] = open_loop(wm, tokenizer, windows, clips, view, text, perceptual, cfg)
        media[subset]["per_step"] = metrics["per_step"]
        result[subset] = {"teacher_forced": teacher_forced(wm, windows, text, cfg), "open_loop": metrics}
    if control == "action":
        rows = clip_rows(clips, subsets["heldout"], evenly_spaced(len(subsets["heldout"].index), 2))
        first = torch.stack([to_model_range(torch.from_numpy(clips.frame(r, 0, view))) for r in rows])
        result["controllability"], media["controllability"] = controllability(wm, tokenizer, first, cfg.horizon, cfg)
    return result, media
