"""The world-model evaluation's statistics: done F1 and standard errors clustered by episode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from roboscape.eval.world_model_eval import binary_f1, clustered_standard_error


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


def test_clustered_standard_error():
    rng = np.random.default_rng(0)
    values = rng.normal(size=12)
    # one sample per cluster: the usual standard error
    assert clustered_standard_error(values, list(range(12))) == pytest.approx(values.std(ddof=1) / 12**0.5)
    # every sample counted twice within its cluster (overlapping clips of one episode): no more
    # certain than before, while the naive standard error would shrink by sqrt(2)
    twice = np.repeat(values, 2)
    assert clustered_standard_error(twice, np.repeat(np.arange(12), 2).tolist()) == pytest.approx(
        clustered_standard_error(values, list(range(12)))
    )
    # correlated within clusters: wider than the naive one
    clustered = np.repeat(rng.normal(size=4), 3) + 0.1 * rng.normal(size=12)
    assert clustered_standard_error(clustered, np.repeat(np.arange(4), 3).tolist()) > clustered.std(ddof=1) / 12**0.5
    assert clustered_standard_error(values, [0] * 12) is None
    with pytest.raises(ValueError, match="12 values but 3"):
        clustered_standard_error(values, [0, 1, 2])
