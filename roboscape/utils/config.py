"""JSON round-tripping for the dataclass configs saved with every model."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Self


class JsonConfig:
    """Mixin for dataclasses: ``to_json``/``from_json`` and ``save``/``load`` to a file."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls(**json.loads(text))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Self:
        return cls.from_json(Path(path).read_text())
