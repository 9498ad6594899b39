"""Records → summaries, Markdown and JSON."""

import json
import math

import numpy as np
import pytest

from ultrasam_hf.evaluation.aggregate import (
    instance_record,
    interactive_record,
    mean_curves,
    metric_stats,
    summarize,
    to_markdown,
    write_json,
)


def square(top, left, size, shape=(10, 10)):
    mask = np.zeros(shape, bool)
    mask[top : top + size, left : left + size] = True
    return mask


def hand_records():
    return [
        {"dataset": "a", "prompt": "box", "instance_id": "1", "metrics": {"dice": 1.0, "hd95": 0.0}},
        {"dataset": "a", "prompt": "box", "instance_id": "2", "metrics": {"dice": 0.0, "hd95": math.inf}},
        {"dataset": "a", "prompt": "point", "instance_id": "1", "metrics": {"dice": 0.5, "hd95": 2.0}},
        {"dataset": "b", "prompt": "box", "instance_id": "1", "metrics": {"dice": 0.25}},
    ]


def test_instance_record_holds_all_metrics():
    record = instance_record("a", "box", 7, square(0, 0, 4), square(0, 2, 4), model="m")
    assert record["instance_id"] == "7" and record["model"] == "m"
    assert record["metrics"]["dice"] == pytest.approx(0.5)
    assert set(record["metrics"]) == {"dice", "iou", "nsd", "hd95"}


def test_interactive_record_has_curves_and_noc():
    target = square(0, 0, 4)
    preds = [square(0, 0, 2), square(0, 0, 3), target]  # IoU 0.25, 0.5625, 1
    record = interactive_record("a", "clicks", "1", preds, target, max_clicks=20)
    assert record["curves"]["iou"] == pytest.approx([0.25, 0.5625, 1.0])
    assert record["metrics"]["noc85_iou"] == 3.0 and record["metrics"]["noc90_iou"] == 3.0
    assert record["metrics"]["dice"] == 1.0
    never = interactive_record("a", "clicks", "2", preds[:2], target, noc_metric="dice", max_clicks=20)
    assert never["metrics"]["noc85_dice"] == 20.0
    with pytest.raises(ValueError, match="noc_metric"):
        interactive_record("a", "clicks", "3", preds, target, noc_metric="nsd")
    with pytest.raises(ValueError, match="empty"):
        interactive_record("a", "clicks", "3", [], target)


def test_summarize_groups_and_reports_mean_std_count():
    rows = summarize(hand_records())
    assert [(r["dataset"], r["prompt"], r["count"]) for r in rows] == [
        ("a", "box", 2),
        ("a", "point", 1),
        ("b", "box", 1),
    ]
    box = rows[0]["metrics"]
    assert box["dice"] == {"mean": 0.5, "std": 0.5, "n": 2, "n_nonfinite": 0}
    assert box["hd95"] == {"mean": 0.0, "std": 0.0, "n": 1, "n_nonfinite": 1}
    assert "hd95" not in rows[2]["metrics"]


def test_summarize_by_model():
    records = [dict(r, model="x") for r in hand_records()] + [dict(hand_records()[0], model="y")]
    rows = summarize(records, group_by=("model", "dataset"))
    assert [(r["model"], r["dataset"], r["count"]) for r in rows] == [("x", "a", 3), ("x", "b", 1), ("y", "a", 1)]


def test_summarize_rejects_bad_records():
    with pytest.raises(ValueError, match="no records"):
        summarize([])
    with pytest.raises(ValueError, match=r"record 0 lacks keys \['prompt'\]"):
        summarize([{"dataset": "a", "instance_id": "1", "metrics": {}}])


def test_metric_stats_with_no_finite_value_is_nan():
    stats = metric_stats([math.inf, math.nan])
    assert math.isnan(stats["mean"]) and stats["n"] == 0 and stats["n_nonfinite"] == 2


def test_markdown_table():
    table = to_markdown(summarize(hand_records()), metrics=["dice", "hd95"])
    lines = table.strip().splitlines()
    assert lines[0] == "| dataset | prompt | count | dice | hd95 |"
    assert lines[2] == "| a | box | 2 | 0.500 ± 0.500 | 0.000 ± 0.000 (1 non-finite) |"
    assert lines[4] == "| b | box | 1 | 0.250 ± 0.000 | – |"


def test_write_json_is_strict_and_round_trips(tmp_path):
    path = write_json({"rows": summarize(hand_records()), "x": np.float32(0.5)}, tmp_path / "out" / "s.json")
    data = json.loads(path.read_text())
    assert data["x"] == 0.5
    assert data["rows"][0]["metrics"]["dice"]["mean"] == 0.5
    raw = [{"metrics": {"hd95": math.inf}}]
    assert json.loads(write_json(raw, tmp_path / "r.json").read_text()) == [{"metrics": {"hd95": None}}]


def test_mean_curves_extend_short_sessions_with_their_last_value():
    records = [
        {"dataset": "a", "prompt": "c", "instance_id": "1", "metrics": {}, "curves": {"dice": [0.5, 1.0]}},
        {"dataset": "a", "prompt": "c", "instance_id": "2", "metrics": {}, "curves": {"dice": [0.2, 0.4, 0.6]}},
        {"dataset": "b", "prompt": "c", "instance_id": "1", "metrics": {}, "curves": {"dice": [0.9]}},
    ]
    curves = mean_curves(records)
    assert curves[("a",)]["mean"] == pytest.approx([0.35, 0.7, 0.8])
    assert curves[("a",)]["count"] == 2
    assert curves[("b",)]["mean"] == pytest.approx([0.9])
    with pytest.raises(ValueError, match="interactive"):
        mean_curves(records, metric="iou")
