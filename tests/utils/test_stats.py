"""The statistics the evaluations report."""

from __future__ import annotations

import numpy as np
import pytest

from roboscape.utils.stats import clustered_standard_error, wilson_interval


def test_wilson_interval_known_values():
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    for n in range(1, 60):  # the bounds at none and all are exact, not a rounding error inside [0, 1]
        assert wilson_interval(0, n)[0] == 0.0 and wilson_interval(n, n)[1] == 1.0
        assert wilson_interval(1, n)[0] > 0.0 and wilson_interval(n - 1, n)[1] < 1.0


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
