"""The world-model evaluation's done F1."""

from __future__ import annotations

import pytest
import torch

from roboscape.eval.world_model_eval import binary_f1


def test_done_f1():
    prob = torch.tensor([0.9, 0.8, 0.2, 0.1, 0.7])
    label = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    r = binary_f1(prob, label, 0.5)
    assert (
        r["precision"] == pytest.approx(2 / 3)
        and r["recall"] == pytest.approx(2 / 3)
        and r["f1"] == pytest.approx(2 / 3)
    )
    assert binary_f1(torch.zeros(3), torch.zeros(3), 0.5)["f1"] == 0.0
