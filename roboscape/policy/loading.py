"""Policy files of either kind (the MLP policy, OpenVLA), read by what their config.json says, so
RL and evaluation take whichever policy SFT made."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from roboscape.policy.mlp import MLPPolicy
from roboscape.policy.openvla import OpenVLAPolicy

POLICIES = {cls.KIND: cls for cls in (MLPPolicy, OpenVLAPolicy)}


def load_policy(model_dir: str | Path, device: str | None = None) -> MLPPolicy | OpenVLAPolicy:
    """The policy saved in ``model_dir``, in eval mode, on ``device`` (default: the CPU for the MLP
    policy, the GPU for OpenVLA when there is one)."""
    meta_path = Path(model_dir) / "config.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{model_dir} has no config.json: not a roboscape policy directory")
    kind = json.loads(meta_path.read_text()).get("kind")
    if kind not in POLICIES:
        raise ValueError(f"{model_dir} holds a {kind!r} model, not a policy ({sorted(POLICIES)})")
    if device is None:
        device = "cuda" if kind == OpenVLAPolicy.KIND and torch.cuda.is_available() else "cpu"
    return POLICIES[kind].from_pretrained(model_dir, device=device)
