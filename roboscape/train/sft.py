"""Supervised fine-tuning of a policy (rule ``sft``): behaviour cloning of the planner's trajectories
in the training scenes, at the policy's rate (:class:`roboscape.data.policy_steps.PolicySteps`).

The MLP policy's loss is the mean squared error of the actor's mean action against the recorded
one, both standardised by the data's per-dimension statistics (which the policy's config records).
OpenVLA's is the cross-entropy of the recorded action's 7 tokens (OpenVLA's own fine-tuning loss),
its bins spanning the data's 1st to 99th percentiles; it learns every instruction the data has. With a
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
from roboscape.policy.openvla import OpenVLAPolicy, OpenVLAPolicyConfig
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
    def compute(policy: MLPPolicy | OpenVLAPolicy, batch: dict) -> dict[str, torch.Tensor]:
        obs = random_shift(batch["obs"], augment_shift) if policy.training else batch["obs"]
        unwrapped = getattr(policy, "module", policy)  # under DistributedDataParallel (several GPUs)
        if isinstance(unwrapped, OpenVLAPolicy):
            # through forward(), so that DistributedDataParallel averages the gradients
            log_probs, _, _ = policy(obs, unwrapped.actions.bins(batch["action"]))
            error, name = -log_probs, "nll"
        else:
            error, name = (policy(obs) - unwrapped.standardised(batch["action"])) ** 2, "mse"
        return {
            "loss": error.mean(),
            f"translation_{name}": error[:, :3].mean(),
            f"rotation_{name}": error[:, 3:6].mean(),
            f"gripper_{name}": error[:, 6].mean(),
        }

    return compute


PPO_ONLY = ("critic", "log_std")  # the value estimate and the exploration noise: PPO's to fit, not SFT's


def actor_only(policy: MLPPolicy | OpenVLAPolicy) -> MLPPolicy | OpenVLAPolicy:
    """The policy with what SFT does not fit (``PPO_ONLY``) frozen: it gets no gradient and no
    optimiser state, as before, and DistributedDataParallel, which waits for a gradient of every
    trainable parameter, runs on several GPUs."""
    for name, parameter in policy.named_parameters():
        if name.split(".")[0] in PPO_ONLY:
            parameter.requires_grad_(False)
    return policy


def _policy_builder(policy_cfg: MLPPolicyConfig | OpenVLAPolicyConfig, instructions: dict[str, torch.Tensor]):
    """A new policy of the config's kind (OpenVLA with the instructions' embeddings), as SFT trains it."""
    if isinstance(policy_cfg, MLPPolicyConfig):
        return lambda: actor_only(MLPPolicy(policy_cfg))

    def build() -> OpenVLAPolicy:
        policy = OpenVLAPolicy(policy_cfg)
        policy.set_instructions(torch.stack([instructions[text] for text in policy_cfg.instructions]))
        return actor_only(policy)

    return build


def fitted_config(
    policy_cfg: MLPPolicyConfig | OpenVLAPolicyConfig, dataset: PolicySteps, instructions: dict[str, torch.Tensor]
) -> MLPPolicyConfig | OpenVLAPolicyConfig:
    """The policy's config with what the data decides: frame size, instruction width, action statistics."""
    first = dataset[0]["obs"]
    if isinstance(policy_cfg, MLPPolicyConfig):
        return replace(
            policy_cfg,
            image_size=first["rgb"].shape[0],
            instruction_dim=first["instruction"].shape[0],
            **dataset.action_statistics(),
        )
    return replace(
        policy_cfg,
        instructions=sorted(instructions),
        instruction_dim=first["instruction"].shape[0],
        **dataset.action_quantiles(),
    )


def train_sft(
    policy_cfg: MLPPolicyConfig | OpenVLAPolicyConfig,
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
    instructions = load_sentences(data.instructions)
    policy_cfg = fitted_config(policy_cfg, dataset, instructions)
    signature = {
        "policy": asdict(policy_cfg),
        "data": asdict(data),
        "augment_shift": augment_shift,
        "code": code_digest,
    }
    trainer = Trainer(
        _policy_builder(policy_cfg, instructions),
        dataset,
        sft_objective(augment_shift),
        train_cfg,
        out_dir,
        signature=signature,
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


def policy_config(spec: dict) -> MLPPolicyConfig | OpenVLAPolicyConfig:
    """``{"kind": ..., fields}`` -> the kind's policy config."""
    fields = {k: v for k, v in spec.items() if k != "kind"}
    kinds = {"mlp": MLPPolicyConfig, "openvla": OpenVLAPolicyConfig}
    if spec.get("kind", "mlp") not in kinds:
        raise ValueError(f"unknown policy kind {spec.get('kind')!r}; choose one of {sorted(kinds)}")
    return kinds[spec.get("kind", "mlp")](**fields)


def run_job(spec: dict) -> dict:
    """A training job (:mod:`roboscape.train.launch`): ``{"policy": {"kind": "mlp" | "openvla", the
    kind's config fields}, "data": SFTData fields, "train": TrainConfig fields, "augment_shift": pixels,
    "out_dir": ..., "code_digest": ...}``."""
    return train_sft(
        policy_config(spec["policy"]),
        SFTData(**spec["data"]),
        TrainConfig(**spec["train"]),
        spec["out_dir"],
        augment_shift=spec.get("augment_shift", 0),
        code_digest=spec.get("code_digest"),
    )
