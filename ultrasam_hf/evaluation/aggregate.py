"""Per-instance records → per-group summaries (mean ± std, count), Markdown tables and JSON files.

A protocol runner does, for each instance: sample a prompt (`prompts.py`) → run the model → build a record
with `instance_record` (or `interactive_record` for click sessions) → collect the records → `summarize`
→ `to_markdown` / `write_json` / `plots.py`.

A record is a plain dict (JSON-serialisable):

    {"dataset": "busbra", "prompt": "box", "instance_id": "img_0001/0",
     "model": "ultrasam",                                  # optional, usable in group_by
     "metrics": {"dice": 0.91, "iou": 0.83, "nsd": 0.88, "hd95": 3.2},
     "curves": {"dice": [0.7, 0.85, ...], "iou": [...]}}   # interactive records only

Statistics policy: mean and population std (ddof=0) over the finite values of a metric; `n` is the
number of finite values and `n_nonfinite` the number of inf/NaN values left out (`metrics.hausdorff95`
never produces them, other code may).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .metrics import ScoreName, click_scores, clicks_to_reach, segmentation_metrics

Record = dict[str, Any]
SummaryRow = dict[str, Any]

REQUIRED_KEYS = ("dataset", "prompt", "instance_id", "metrics")


def instance_record(
    dataset: str,
    prompt: str,
    instance_id: str,
    pred: np.ndarray,
    target: np.ndarray,
    *,
    tolerance: float = 2.0,
    spacing: Sequence[float] | None = None,
    model: str | None = None,
) -> Record:
    """Record of one prompted prediction: (H, W) binary `pred` vs `target`, all four metrics."""
    record: Record = {"dataset": dataset, "prompt": prompt, "instance_id": str(instance_id)}
    if model is not None:
        record["model"] = model
    record["metrics"] = segmentation_metrics(pred, target, tolerance=tolerance, spacing=spacing)
    return record


def interactive_record(
    dataset: str,
    prompt: str,
    instance_id: str,
    preds_per_click: Sequence[np.ndarray],
    target: np.ndarray,
    *,
    noc_metric: ScoreName = "iou",
    thresholds: Sequence[float] = (0.85, 0.90),
    max_clicks: int | None = None,
    tolerance: float = 2.0,
    spacing: Sequence[float] | None = None,
    model: str | None = None,
) -> Record:
    """Record of one interactive session; `preds_per_click[i]` is the (H, W) mask after click i + 1.

    metrics: the four metrics of the last prediction, plus `noc{85,90}_{noc_metric}` (clicks to reach
    each threshold, `max_clicks` when never reached; see `metrics.clicks_to_reach`).
    curves: Dice and IoU after every click.
    """
    if len(preds_per_click) == 0:
        raise ValueError("preds_per_click is empty: an interactive session needs at least one click")
    if noc_metric not in ("dice", "iou"):
        raise ValueError(f"noc_metric must be 'dice' or 'iou', got {noc_metric!r}")
    record = instance_record(
        dataset, prompt, instance_id, preds_per_click[-1], target, tolerance=tolerance, spacing=spacing, model=model
    )
    curves = {name: click_scores(preds_per_click, target, name) for name in ("dice", "iou")}
    for threshold in thresholds:
        key = f"noc{round(threshold * 100)}_{noc_metric}"
        record["metrics"][key] = float(clicks_to_reach(curves[noc_metric], threshold, max_clicks))
    record["curves"] = curves
    return record


def _check_records(records: Sequence[Mapping[str, Any]], group_by: Sequence[str]) -> None:
    if len(records) == 0:
        raise ValueError("no records to aggregate")
    for index, record in enumerate(records):
        missing = [key for key in dict.fromkeys((*REQUIRED_KEYS, *group_by)) if key not in record]
        if missing:
            raise ValueError(f"record {index} lacks keys {missing}; it has {sorted(record)}")


def metric_stats(values: Iterable[float]) -> dict[str, float | int]:
    """{"mean", "std", "n", "n_nonfinite"} of values: mean / population std over finite ones (NaN if none)."""
    array = np.asarray(list(values), dtype=float)
    finite = array[np.isfinite(array)]
    mean = float(finite.mean()) if finite.size else math.nan
    std = float(finite.std()) if finite.size else math.nan
    return {"mean": mean, "std": std, "n": int(finite.size), "n_nonfinite": int(array.size - finite.size)}


def summarize(
    records: Sequence[Mapping[str, Any]], group_by: Sequence[str] = ("dataset", "prompt")
) -> list[SummaryRow]:
    """Group records by `group_by` keys; per group: the key values, `count`, and per-metric stats.

    Rows are sorted by their key values; metrics appear in first-seen order. A metric missing from some
    records of a group is summarised over the records that have it (its `n` shows how many).
    """
    _check_records(records, group_by)
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault(tuple(str(record[key]) for key in group_by), []).append(record)
    rows: list[SummaryRow] = []
    for key in sorted(groups):
        members = groups[key]
        names: list[str] = []
        for record in members:
            names.extend(name for name in record["metrics"] if name not in names)
        stats = {name: metric_stats(r["metrics"][name] for r in members if name in r["metrics"]) for name in names}
        rows.append({**dict(zip(group_by, key)), "count": len(members), "metrics": stats})
    return rows


def mean_curves(
    records: Sequence[Mapping[str, Any]], metric: ScoreName = "dice", group_by: Sequence[str] = ("dataset",)
) -> dict[tuple[str, ...], dict[str, Any]]:
    """Mean score-vs-clicks curve per group of interactive records.

    Returns {group key tuple: {"mean": [..], "std": [..], "count": n}}, element i after click i + 1.
    Curves shorter than the group's longest (sessions that stopped early) are extended with their last
    value: the mask no longer changes once a session stops.
    """
    _check_records(records, group_by)
    grouped: dict[tuple[str, ...], list[list[float]]] = {}
    for index, record in enumerate(records):
        curve = record.get("curves", {}).get(metric)
        if not curve:
            raise ValueError(f"record {index} has no non-empty curves[{metric!r}]: not an interactive record")
        grouped.setdefault(tuple(str(record[key]) for key in group_by), []).append([float(v) for v in curve])
    result: dict[tuple[str, ...], dict[str, Any]] = {}
    for key in sorted(grouped):
        curves = grouped[key]
        length = max(len(c) for c in curves)
        padded = np.array([c + [c[-1]] * (length - len(c)) for c in curves])
        result[key] = {"mean": padded.mean(axis=0).tolist(), "std": padded.std(axis=0).tolist(), "count": len(curves)}
    return result


def _format_stat(stat: Mapping[str, float | int], precision: int) -> str:
    if stat["n"] == 0:
        text = "n/a"
    else:
        text = f"{stat['mean']:.{precision}f} ± {stat['std']:.{precision}f}"
    if stat["n_nonfinite"]:
        text += f" ({stat['n_nonfinite']} non-finite)"
    return text


def to_markdown(summary: Sequence[SummaryRow], metrics: Sequence[str] | None = None, precision: int = 3) -> str:
    """Markdown table of `summarize` rows: group keys, count, then "mean ± std" per metric."""
    if len(summary) == 0:
        raise ValueError("empty summary: nothing to render")
    keys = [k for k in summary[0] if k not in ("count", "metrics")]
    if metrics is None:
        metrics = []
        for row in summary:
            metrics.extend(name for name in row["metrics"] if name not in metrics)
    header = [*keys, "count", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in summary:
        cells = [str(row[k]) for k in keys] + [str(row["count"])]
        cells += [_format_stat(row["metrics"][m], precision) if m in row["metrics"] else "–" for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _json_safe(value.item())
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(data: Any, path: str | Path) -> Path:
    """Write records or a summary as strict JSON (inf / NaN become null); creates parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n")
    return path
