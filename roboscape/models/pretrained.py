"""Model files: safetensors weights plus the model's JSON config, loaded with one call.

A model directory holds ``model.safetensors`` and ``config.json`` (``{"kind": ..., "config": {...}}``).
Every model class mixes in :class:`Pretrained` and names its ``KIND`` and config class, so
``Tokenizer.from_pretrained(path)`` or ``WorldModel.from_pretrained(path)`` loads one, and a
directory of another kind is refused by name.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, Self

from safetensors.torch import load_model, save_model


class Pretrained:
    """Mixin for ``nn.Module`` models with a dataclass config at ``self.cfg``."""

    KIND: ClassVar[str]
    CONFIG: ClassVar[type]
    cfg: Any

    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Write weights and config atomically (a directory rename)."""
        out_dir = Path(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
        self.write_weights(tmp / "model.safetensors")
        (tmp / "config.json").write_text(json.dumps({"kind": self.KIND, "config": asdict(self.cfg)}, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
        return out_dir

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str = "cpu") -> Self:
        """The model saved in ``model_dir``, in eval mode."""
        model_dir = Path(model_dir)
        meta_path = model_dir / "config.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{model_dir} has no config.json: not a roboscape model directory")
        meta = json.loads(meta_path.read_text())
        if meta.get("kind") != cls.KIND:
            raise ValueError(f"{model_dir} holds a {meta.get('kind')!r} model, not a {cls.KIND!r}")
        model = cls(cls.CONFIG(**meta["config"]))
        try:
            model.read_weights(model_dir / "model.safetensors", device)
        except RuntimeError as err:
            raise ValueError(
                f"{model_dir}: the weights do not fit the model its config.json describes ({err})"
            ) from err
        return model.to(device).eval()

    def write_weights(self, path: Path) -> None:
        """Save the weights a model directory holds (every tensor of the module, by default)."""
        save_model(self, str(path))

    def read_weights(self, path: Path, device: str) -> None:
        """Load what :meth:`write_weights` saved; a RuntimeError when it does not fit."""
        load_model(self, str(path), device=device)
