"""Statistics the evaluations report: a standard error for correlated samples, and the interval of a
success rate."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

Z95 = 1.959964  # the standard normal's quantile of a two-sided 95% interval


def clustered_standard_error(values: np.ndarray | torch.Tensor, clusters: list) -> float | None:
    """Standard error of the mean of ``values`` when samples of one cluster are correlated
    (the cluster-robust sandwich estimator with the G / (G - 1) small-sample factor): each
    cluster's summed deviation from the overall mean counts as one draw. With one sample per
    cluster it is the usual standard error (ddof 1). None with fewer than two clusters."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) != len(clusters):
        raise ValueError(f"{len(values)} values but {len(clusters)} cluster labels")
    groups = sorted(set(clusters))
    if len(groups) < 2:
        return None
    deviation = values - values.mean()
    summed = np.array([deviation[[c == g for c in clusters]].sum() for g in groups])
    return float(np.sqrt(len(groups) / (len(groups) - 1) * (summed**2).sum()) / len(values))


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The 95% Wilson score interval of a success rate (a proportion of ``n`` trials). Its bound at
    no successes is 0 and at all successes 1, exactly (not a rounding error away)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (0.0 if successes == 0 else centre - half, 1.0 if successes == n else centre + half)
