"""RL w. World Model's job: what it refuses before loading anything (the run itself is the
pipeline test's, on tiny models)."""

from __future__ import annotations

import pytest
import torch

from roboscape.rl.in_world_model import train_in_world_model


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_the_machine_lacks_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="no GPU"):
        train_in_world_model(*(tmp_path,) * 3, None, None, None, None, tmp_path / "out", device="cuda")
    assert not (tmp_path / "out").exists()
