"""Supervised fine-tuning of a policy (rule ``sft``): behaviour cloning of the planner's trajectories
in the training scenes, at the policy's rate (:class:`roboscape.data.policy_steps.PolicySteps`).

The loss is the mean squared error of the actor's mean action against the recorded one, both
standardised by the data's per-dimension statistics (which the policy's config records). With a
few demonstrations per scene, frames are randomly shifted by up to ``augment_shift`` pixels (padded
by replicating the border, both frames of an item by the same shift: DrQ's augmentation). The
log-std keeps its initial value (PPO's exploration starts from it) and the value head is left to
PPO. It runs on the shared Accelerate trainer: resumable checkpoints, CSV and TensorBoard curves, a
progress bar.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from roboscape.data.policy_steps import PolicySteps
from roboscape.models.text_encoder import load_sentences
from roboscape.policy.mlp import MLPPolicy, MLPPolicyConfig
from roboscape.train.trainer import TrainConfig, Trainer
from roboscape.utils.io import write_json


@dataclass
class SFTData:
    """What SFT reads: the trajectory shards, the training scenes, the kinds of trajectory, the
    policy's rate and the instructions' sentence embeddings."""

    trajectories: list[str]
    scene_ids: list[str]
    labels: list[str]
    frame_skip: int
    instructions: str

    def dataset(self) -> PolicySteps:
        embeddings = {k: v.numpy() for k, v in load_sentences(self.instructions).items()}
        return PolicySteps(self.trajectories, self.scene_ids, self.labels, self.frame_skip, embeddings)


def random_shift(obs: dict[str, torch.Tensor], pad: int) -> dict[str, torch.Tensor]:
    """Both frames of each item shifted by the same random offset of up to ``pad`` pixels."""
    if pad == 0:
        return obs
    frames = torch.cat([obs["rgb"], obs["prev_rgb"]], dim=-1).permute(0, 3, 1, 2).float()
    n, _, h, w = frames.shape
    padded = torch.nn.functional.pad(frames, (pad, pad, pad, pad), mode="replicate")
    offsets = torch.randint(0, 2 * pad + 1, (n, 2)).tolist()
    shifted = torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)])
    shifted = shifted.to(torch.uint8).permute(0, 2, 3, 1)
    return {**obs, "rgb": shifted[..., :3], "prev_rgb": shifted[..., 3:]}


def sft_objective(augment_shift: int):
    def compute(policy: MLPPolicy, batch: dict) -> dict[str, torch.Tensor]:
        obs = random_shift(batch["obs"], augment_shift) if policy.training else batch["obs"]
        predicted = policy.actor(policy.features(obs))
        error = (predicted - policy.standardised(batch["action"])) ** 2
        return {
            "loss": error.mean(),
            "translation_mse": error[:, :3].mean(),
            "rotation_mse": error[:, 3:6].mean(),
            "gripper_mse": error[:, 6].mean(),
        }

    return compute


def train_sft(
    policy_cfg: MLPPolicyConfig,
    data: SFTData,
    train_cfg: TrainConfig,
    out_dir: str | Path,
    augment_shift: int = 4,
    code_digest: str | None = None,
) -> dict:
    """Train (resuming from the last checkpoint of the same configuration, data and code), save the
    policy to ``out_dir/model`` and ``train.json``."""
    out_dir = Path(out_dir)
    dataset = data.dataset()
    first = dataset[0]["obs"]
    policy_cfg = replace(
        policy_cfg,
        image_size=first["rgb"].shape[0],
        instruction_dim=first["instruction"].shape[0],
        **dataset.action_statistics(),
    )
    signature = {
        "policy": asdict(policy_cfg),
        "data": asdict(data),
        "augment_shift": augment_shift,
        "code": code_digest,
    }
    trainer = Trainer(
        lambda: MLPPolicy(policy_cfg), dataset, sft_objective(augment_shift), train_cfg, out_dir, signature=signature
    )
    last = trainer.train()
    result = {
        "steps": trainer.step,
        "resumed_from_step": trainer.start_step,
        "final": last,
        "samples": len(dataset),
        "episodes": len(dataset.episodes),
        "config": {
            "policy": asdict(policy_cfg),
            "train": asdict(train_cfg),
            "data": asdict(data),
            "augment_shift": augment_shift,
        },
    }
    if trainer.accelerator.is_main_process:
        trainer.unwrapped_model().save_pretrained(out_dir / "model")
        write_json(out_dir / "train.json", result)
    return result


def run_job(spec: dict) -> dict:
    """A training job (:mod:`roboscape.train.launch`): ``{"policy": MLPPolicyConfig fields, "data":
    SFTData fields, "train": TrainConfig fields, "augment_shift": pixels, "out_dir": ..., "code_digest": ...}``."""
    return train_sft(
        MLPPolicyConfig(**spec["policy"]),
        SFTData(**spec["data"]),
        TrainConfig(**spec["train"]),
        spec["out_dir"],
        augment_shift=spec.get("augment_shift", 0),
        code_digest=spec.get("code_digest"),
    )
