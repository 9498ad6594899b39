"""Evaluation figures (matplotlib, Agg canvas; no pyplot, so the caller's backend is left untouched).

* `plot_score_vs_clicks`: mean Dice (or IoU) after each click, one line per dataset (from `mean_curves`).
* `plot_metric_bars`: one group of bars per dataset, one bar per prompt or model (from `summarize`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_score_vs_clicks(
    curves: Mapping[tuple[str, ...], Mapping[str, Any]], path: str | Path, metric: str = "dice"
) -> Path:
    """Line plot of `aggregate.mean_curves` output (one line per group, ± std band); saved to `path`."""
    if len(curves) == 0:
        raise ValueError("no curves to plot")
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    for key, curve in curves.items():
        mean, std = np.asarray(curve["mean"]), np.asarray(curve["std"])
        clicks = np.arange(1, mean.size + 1)
        axes.plot(clicks, mean, marker="o", label=f"{' / '.join(key)} (n={curve['count']})")
        axes.fill_between(clicks, mean - std, mean + std, alpha=0.15)
    axes.set_xlabel("clicks")
    axes.set_ylabel(metric)
    axes.set_ylim(0.0, 1.0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, path)


def plot_metric_bars(
    summary: Sequence[Mapping[str, Any]],
    path: str | Path,
    metric: str = "dice",
    group_key: str = "dataset",
    hue_key: str = "prompt",
) -> Path:
    """Grouped bars of `aggregate.summarize` rows: x = `group_key` values, one bar per `hue_key` value.

    Bar height is the metric mean, the error bar its std. Rows lacking the metric are skipped.
    """
    rows = [row for row in summary if metric in row["metrics"] and row["metrics"][metric]["n"] > 0]
    if not rows:
        raise ValueError(f"no summary row holds metric {metric!r}")
    for key in (group_key, hue_key):
        if key not in rows[0]:
            raise ValueError(f"summary rows lack key {key!r}; they have {sorted(rows[0])}")
    groups = sorted({str(row[group_key]) for row in rows})
    hues = sorted({str(row[hue_key]) for row in rows})
    width = 0.8 / len(hues)
    figure = Figure(figsize=(max(6, 1.2 * len(groups) * max(1, len(hues)) / 2), 4))
    axes = figure.add_subplot()
    for h, hue in enumerate(hues):
        heights, errors = np.full(len(groups), np.nan), np.zeros(len(groups))
        for row in rows:
            if str(row[hue_key]) == hue:
                g = groups.index(str(row[group_key]))
                heights[g], errors[g] = row["metrics"][metric]["mean"], row["metrics"][metric]["std"]
        positions = np.arange(len(groups)) + (h - (len(hues) - 1) / 2) * width
        axes.bar(positions, heights, width, yerr=errors, capsize=2, label=hue)
    axes.set_xticks(np.arange(len(groups)), groups, rotation=30, ha="right")
    axes.set_ylabel(metric)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(title=hue_key, fontsize="small")
    return _save(figure, path)
