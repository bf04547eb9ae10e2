"""Model files: safetensors weights plus the model's JSON config, loadable with one call.

A model directory holds ``model.safetensors`` and ``config.json`` (``{"kind": ..., "config": {...}}``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from safetensors.torch import load_model, save_model
from torch import nn

KINDS: dict[str, tuple[str, str, str]] = {
    # kind: (module, model class, config class)
    "tokenizer": ("roboscape.models.tokenizer", "Tokenizer", "TokenizerConfig"),
    "world_model": ("roboscape.models.world_model", "WorldModel", "WorldModelConfig"),
}


def _classes(kind: str):
    import importlib

    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known: {sorted(KINDS)}")
    module, model_cls, cfg_cls = KINDS[kind]
    mod = importlib.import_module(module)
    return getattr(mod, model_cls), getattr(mod, cfg_cls)


def save_pretrained(model: nn.Module, kind: str, out_dir: str | Path) -> Path:
    """Write weights and config atomically (a directory rename)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    save_model(model, str(tmp / "model.safetensors"))
    (tmp / "config.json").write_text(json.dumps({"kind": kind, "config": asdict(model.cfg)}, indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def load_pretrained(model_dir: str | Path, device: str = "cpu") -> nn.Module:
    """The model saved in ``model_dir``, in eval mode."""
    model_dir = Path(model_dir)
    meta_path = model_dir / "config.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{model_dir} has no config.json: not a roboscape model directory")
    meta = json.loads(meta_path.read_text())
    model_cls, cfg_cls = _classes(meta["kind"])
    model = model_cls(cfg_cls(**meta["config"]))
    load_model(model, str(model_dir / "model.safetensors"), device=device)
    return model.to(device).eval()
