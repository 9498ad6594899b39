"""The shape of a protocol run, with the box baselines standing in for the model."""

import numpy as np
import pytest

from ultrasam_hf.evaluation import (
    box_from_mask,
    centroid_point,
    filled_box_mask,
    inscribed_ellipse_mask,
    instance_record,
    interactive_record,
    mean_curves,
    next_click,
    summarize,
    to_markdown,
)


def disc(shape, centre, radius):
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(ys - centre[0], xs - centre[1]) <= radius


def test_prompt_model_metrics_records_summary():
    targets = {"d1": [disc((64, 64), (20, 30), 8), disc((64, 64), (40, 40), 12)]}
    records = []
    for dataset, masks in targets.items():
        for index, target in enumerate(masks):
            box = box_from_mask(target)
            for model, baseline in (("box", filled_box_mask), ("ellipse", inscribed_ellipse_mask)):
                pred = baseline(box, target.shape)
                records.append(instance_record(dataset, "box", f"{index}", pred, target, model=model))
    rows = summarize(records, group_by=("dataset", "prompt", "model"))
    by_model = {row["model"]: row["metrics"]["dice"]["mean"] for row in rows}
    assert by_model["ellipse"] > 0.93 > 0.9 > by_model["box"] > 0.8  # a disc ~ its inscribed ellipse; box ~ pi/4 fill
    assert "| d1 | box | ellipse | 2 |" in to_markdown(rows)


def test_click_loop_with_a_simulated_model():
    target = disc((48, 48), (24, 24), 10)
    x, y = centroid_point(target)
    pred = disc(target.shape, (y, x), 4)  # a timid "model": a small disc at the first click
    preds = [pred]
    for _ in range(4):
        click = next_click(pred, target)
        if click is None:
            break
        cx, cy, label = click
        brush = disc(target.shape, (cy, cx), 4)
        pred = (pred | (brush & target)) if label == 1 else (pred & ~brush)
        preds.append(pred)
    record = interactive_record("d1", "clicks", "0", preds, target, max_clicks=20)
    curve = record["curves"]["dice"]
    assert curve == sorted(curve) and curve[-1] > curve[0]
    assert mean_curves([record])[("d1",)]["mean"] == pytest.approx(curve)
