"""Clicks-to-reach (NoC) and per-click scores."""

import numpy as np
import pytest

from ultrasam_hf.evaluation.metrics import click_scores, clicks_to_reach


def test_clicks_to_reach_counts_the_first_click_at_or_above_threshold():
    scores = [0.5, 0.8, 0.85, 0.95]
    assert clicks_to_reach(scores, 0.85) == 3
    assert clicks_to_reach(scores, 0.90) == 4
    assert clicks_to_reach([0.9], 0.85) == 1


def test_never_reached_returns_max_clicks():
    scores = [0.1, 0.2, 0.3]
    assert clicks_to_reach(scores, 0.85) == 3
    assert clicks_to_reach(scores, 0.85, max_clicks=20) == 20


def test_max_clicks_truncates_longer_sessions():
    assert clicks_to_reach([0.1, 0.2, 0.9], 0.85, max_clicks=2) == 2


@pytest.mark.parametrize("threshold", [0.0, 1.5, -0.1])
def test_invalid_threshold_raises(threshold):
    with pytest.raises(ValueError, match="threshold"):
        clicks_to_reach([0.5], threshold)


def test_empty_or_nan_scores_raise():
    with pytest.raises(ValueError, match="empty"):
        clicks_to_reach([], 0.85)
    with pytest.raises(ValueError, match="NaN"):
        clicks_to_reach([0.5, float("nan")], 0.85)


def test_click_scores_uses_the_chosen_metric():
    target = np.zeros((4, 4), bool)
    target[:2, :2] = True  # 4 pixels
    half = np.zeros((4, 4), bool)
    half[:1, :2] = True  # 2 pixels inside the target
    assert click_scores([half, target], target, "iou") == pytest.approx([0.5, 1.0])
    assert click_scores([half, target], target, "dice") == pytest.approx([2 / 3, 1.0])
    with pytest.raises(ValueError, match="metric"):
        click_scores([half], target, "nsd")
