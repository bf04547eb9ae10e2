"""The offline instruction encoder and its cache."""

from __future__ import annotations

import pytest
import torch

from roboscape.models.text_encoder import TextEncoder, encode_instructions, load_instruction_cache


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder("minilm")


def test_minilm_loads_offline_and_gives_per_token_states(encoder):
    states, mask = encoder.encode(["pick up the lemon and place it on the plate", "push the plum forward by 10 cm"])
    assert states.shape[0] == 2 and states.shape[2] == encoder.dim == 384
    assert mask.shape == states.shape[:2] and mask[0].all() and not mask[1].all()  # the shorter one is padded
    again, _ = encoder.encode(["pick up the lemon and place it on the plate"])
    assert torch.allclose(again[0], states[0, : again.shape[1]], atol=1e-5)  # deterministic, padding-independent
    a, b = encoder.encode(
        ["pick up the lemon and place it on the plate", "pick up the garlic and place it in the bowl"]
    )[0]
    assert not torch.allclose(a, b)


def test_bad_inputs(encoder):
    with pytest.raises(ValueError, match="non-empty"):
        encoder.encode([""])
    with pytest.raises(ValueError, match="unknown text encoder"):
        TextEncoder("bert")


def test_instruction_cache_round_trip(tmp_path):
    texts = ["push the lemon forward by 10 cm", "pull the lemon back by 10 cm", "push the lemon forward by 10 cm"]
    rows = encode_instructions(texts, tmp_path / "text.safetensors")
    assert len(rows) == 2
    back, states, mask = load_instruction_cache(tmp_path / "text.safetensors")
    assert back == rows and states.shape[:2] == mask.shape and states.shape[2] == 384
    direct, _ = TextEncoder("minilm").encode(["pull the lemon back by 10 cm"])
    r = rows["pull the lemon back by 10 cm"]
    assert torch.allclose(states[r, : direct.shape[1]], direct[0], atol=1e-5)
