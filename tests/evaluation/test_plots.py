"""Figures are written as PNG files from summaries and curves."""

import pytest

from ultrasam_hf.evaluation.plots import plot_metric_bars, plot_score_vs_clicks

PNG_MAGIC = b"\x89PNG"


def summary_rows():
    stats = lambda mean: {"dice": {"mean": mean, "std": 0.1, "n": 3, "n_nonfinite": 0}}  # noqa: E731
    return [
        {"dataset": "a", "prompt": "box", "count": 3, "metrics": stats(0.9)},
        {"dataset": "a", "prompt": "point", "count": 3, "metrics": stats(0.7)},
        {"dataset": "b", "prompt": "box", "count": 3, "metrics": stats(0.8)},
    ]


def test_bars_png(tmp_path):
    path = plot_metric_bars(summary_rows(), tmp_path / "figs" / "bars.png")
    assert path.read_bytes()[:4] == PNG_MAGIC


def test_bars_reject_unknown_metric_or_key(tmp_path):
    with pytest.raises(ValueError, match="nsd"):
        plot_metric_bars(summary_rows(), tmp_path / "x.png", metric="nsd")
    with pytest.raises(ValueError, match="model"):
        plot_metric_bars(summary_rows(), tmp_path / "x.png", hue_key="model")


def test_clicks_png(tmp_path):
    curves = {("a",): {"mean": [0.5, 0.8, 0.9], "std": [0.1, 0.1, 0.05], "count": 4}}
    path = plot_score_vs_clicks(curves, tmp_path / "clicks.png")
    assert path.read_bytes()[:4] == PNG_MAGIC
    with pytest.raises(ValueError, match="no curves"):
        plot_score_vs_clicks({}, tmp_path / "none.png")
