"""Evaluation layer, independent of the model: metrics, prompt sampling, baselines, aggregation, plots.

A protocol runner: `prompts` (sample a prompt from the ground truth) → model → `aggregate.instance_record`
/ `aggregate.interactive_record` (metrics per instance) → `aggregate.summarize` → `aggregate.to_markdown`,
`aggregate.write_json`, `plots`.
"""

from __future__ import annotations

from pathlib import Path

from .aggregate import instance_record, interactive_record, mean_curves, summarize, to_markdown, write_json
from .baselines import filled_box_mask, inscribed_ellipse_mask
from .metrics import (
    click_scores,
    clicks_to_reach,
    dice,
    hausdorff95,
    iou,
    normalized_surface_dice,
    segmentation_metrics,
)
from .prompts import box_from_mask, centroid_point, jittered_box, next_click, random_point

METRIC_PATH = Path(__file__).resolve().parent / "ultrasam_segmentation_metric"


def load_metric(**kwargs):
    """The `ultrasam_segmentation_metric` evaluate module, loaded from this package's folder (no Hub).

    Keyword arguments go to `evaluate.load` (e.g. `experiment_id`, `keep_in_memory`).
    """
    import evaluate

    return evaluate.load(str(METRIC_PATH), **kwargs)


__all__ = [
    "METRIC_PATH",
    "box_from_mask",
    "centroid_point",
    "click_scores",
    "clicks_to_reach",
    "dice",
    "filled_box_mask",
    "hausdorff95",
    "inscribed_ellipse_mask",
    "instance_record",
    "interactive_record",
    "iou",
    "jittered_box",
    "load_metric",
    "mean_curves",
    "next_click",
    "normalized_surface_dice",
    "random_point",
    "segmentation_metrics",
    "summarize",
    "to_markdown",
    "write_json",
]
