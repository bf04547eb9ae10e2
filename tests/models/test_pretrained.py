"""Model files: safetensors weights and a JSON config, loaded with one call by the model's class."""

from __future__ import annotations

import pytest
import torch

from roboscape.models.tokenizer import Tokenizer, TokenizerConfig
from roboscape.models.world_model import WorldModel


def test_model_files_round_trip(tmp_path):
    model = Tokenizer(TokenizerConfig(image_size=16, downsample_factor=2, base_channels=16, codebook_bits=6)).eval()
    model.save_pretrained(tmp_path / "tok")
    assert {p.name for p in (tmp_path / "tok").iterdir()} == {"model.safetensors", "config.json"}
    loaded = Tokenizer.from_pretrained(tmp_path / "tok")
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert loaded.cfg == model.cfg
    assert torch.equal(loaded.encode(x), model.encode(x))
    with pytest.raises(ValueError, match="holds a 'tokenizer' model, not a 'world_model'"):
        WorldModel.from_pretrained(tmp_path / "tok")
    with pytest.raises(FileNotFoundError, match="not a roboscape model directory"):
        Tokenizer.from_pretrained(tmp_path)
