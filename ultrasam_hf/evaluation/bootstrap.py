"""Confidence intervals by the cluster bootstrap: resample whole groups (patients, scans) with replacement, recompute
the statistic on the items of the drawn groups, take percentiles.

Images of one patient (BUS-BRA's left / right views) or frames of one scan are not independent; resampling images
would give intervals that are too narrow. With one group per item it is the ordinary bootstrap.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def grouped_bootstrap(
    statistic: Callable[[np.ndarray], dict[str, float]],
    groups: Sequence,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """`statistic(indices)` → `{name: value}` on the items at `indices` (repeats allowed); `groups[i]`: the group of
    item i. Returns `{name: {"value": on all items, "low": ..., "high": ..., "resamples": finite draws}}`, the
    percentile interval at `level`. Draws where a value is not finite (e.g. AUC on a resample with one class) are left
    out of that value's interval and counted out of `resamples`."""
    groups = np.asarray([str(g) for g in groups])
    if groups.size == 0:
        raise ValueError("grouped_bootstrap needs at least one item")
    names, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(names))]
    point = statistic(np.arange(groups.size))
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in point}
    for _ in range(resamples):
        picked = rng.integers(0, len(members), size=len(members))
        values = statistic(np.concatenate([members[k] for k in picked]))
        for name in draws:
            draws[name].append(float(values[name]))
    tail = (1 - level) / 2 * 100
    result = {}
    for name, value in point.items():
        finite = np.asarray([v for v in draws[name] if np.isfinite(v)])
        low, high = np.percentile(finite, [tail, 100 - tail]) if finite.size else (np.nan, np.nan)
        result[name] = {"value": float(value), "low": float(low), "high": float(high), "resamples": int(finite.size)}
    return result


__all__ = ["grouped_bootstrap"]
