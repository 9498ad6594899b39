"""The `evaluate` metric module loads from its local folder (offline) and averages per-instance metrics."""

import math

import numpy as np
import pytest

from ultrasam_hf.evaluation import METRIC_PATH, load_metric
from ultrasam_hf.evaluation.metrics import segmentation_metrics


@pytest.fixture(scope="module")
def metric():
    return load_metric(keep_in_memory=True)


def test_metric_folder_holds_its_script():
    assert (METRIC_PATH / "ultrasam_segmentation_metric.py").is_file()


def test_variable_size_masks_are_averaged(metric):
    pred_a = np.zeros((6, 8), np.uint8)
    pred_a[1:4, 1:4] = 1
    target_a = np.zeros((6, 8), np.uint8)
    target_a[1:4, 2:5] = 1
    pred_b = np.zeros((3, 4), np.uint8)  # empty prediction, non-empty target
    target_b = np.ones((3, 4), np.uint8)
    result = metric.compute(
        predictions=[pred_a, pred_b], references=[target_a, target_b], tolerance=1.0, spacing=(0.5, 2.0)
    )
    first = segmentation_metrics(pred_a, target_a, tolerance=1.0, spacing=(0.5, 2.0))
    assert result["count"] == 2
    assert result["mean_dice"] == pytest.approx((first["dice"] + 0.0) / 2)
    assert result["mean_iou"] == pytest.approx((first["iou"] + 0.0) / 2)
    assert result["mean_nsd"] == pytest.approx((first["nsd"] + 0.0) / 2)
    assert result["mean_hd95"] == pytest.approx((first["hd95"] + math.hypot(3 * 0.5, 4 * 2.0)) / 2)


def test_add_batch_then_compute(metric):
    mask = np.eye(5, dtype=np.uint8)
    metric.add_batch(predictions=[mask], references=[mask])
    metric.add(prediction=mask.tolist(), reference=mask.tolist())
    assert metric.compute() == {"mean_dice": 1.0, "mean_iou": 1.0, "mean_nsd": 1.0, "mean_hd95": 0.0, "count": 2}


def test_shape_mismatch_raises(metric):
    with pytest.raises(ValueError, match="shapes differ"):
        metric.compute(predictions=[np.zeros((2, 3), np.uint8)], references=[np.zeros((3, 2), np.uint8)])
