"""Protocols with a scripted stand-in predictor: the prompts each protocol sends, and the click loop's feedback."""

import numpy as np
import pytest

from ultrasam_hf.evaluation.protocols import baseline_protocol, box_protocol, click_protocol, point_protocol
from ultrasam_hf.evaluation.runner import EvalSettings, model_names


def disc(shape, centre, radius):
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(ys - centre[0], xs - centre[1]) <= radius


class ScriptedPredictor:
    """Predicts a disc of radius `grow * (number of positive clicks)` at the first click; logs every call."""

    def __init__(self, shape, grow=4, low_res=16):
        self.shape, self.grow, self.low_res, self.calls = shape, grow, low_res, []

    def predict(self, boxes=None, points=None, labels=None, mask_input=None, multimask_output=True):
        self.calls.append(
            dict(boxes=boxes, points=points, labels=labels, mask_input=mask_input, multimask=multimask_output)
        )
        count = len(boxes) if boxes is not None else len(points)
        channels = 3 if multimask_output else 1
        masks = np.zeros((count, channels, *self.shape), dtype=bool)
        for k in range(count):
            if boxes is not None:
                x0, y0, x1, y1 = np.asarray(boxes[k], dtype=int)
                masks[k, :, y0 : y1 + 1, x0 : x1 + 1] = True
            else:
                x, y = points[k][0]
                masks[k, :] = disc(self.shape, (y, x), self.grow * int(np.sum(labels[k])))
        scores = np.tile(np.arange(channels, dtype=float), (count, 1))  # the last channel "scores" highest
        logits = np.full((count, channels, self.low_res, self.low_res), float(len(self.calls)))
        return masks, scores, logits


def test_box_and_point_prompts_are_batched_and_tight():
    targets = [disc((40, 50), (12, 15), 5), disc((40, 50), (28, 35), 7)]
    predictor = ScriptedPredictor((40, 50))
    boxes = box_protocol(predictor, targets)
    assert len(predictor.calls) == 1 and predictor.calls[0]["boxes"].shape == (2, 4)
    assert boxes[0].box == [10.0, 7.0, 20.0, 17.0] and boxes[0].mask.shape == (40, 50)
    points = point_protocol(predictor, targets, multimask=True)
    call = predictor.calls[1]
    assert call["points"].shape == (2, 1, 2) and call["labels"].tolist() == [[1], [1]] and call["multimask"]
    assert points[1].points.tolist() == [[35.0, 28.0]]


def test_click_loop_feeds_back_logits_and_corrective_clicks():
    target = disc((40, 40), (20, 20), 12)
    predictor = ScriptedPredictor((40, 40), grow=4)
    (session,) = click_protocol(predictor, [target], clicks=3)
    assert [c["mask_input"] is None for c in predictor.calls] == [True, False, False]
    assert predictor.calls[1]["mask_input"].shape == (1, 16, 16) and predictor.calls[1]["mask_input"].max() == 1.0
    assert predictor.calls[2]["points"].shape == (1, 3, 2)
    assert session.labels.tolist() == [1, 1, 1]  # the disc is always too small: positive clicks
    dice = [2 * (m & target).sum() / (m.sum() + target.sum()) for m in session.masks_per_click]
    assert len(dice) == 3 and dice == sorted(dice)


def test_click_session_stops_when_the_mask_is_perfect():
    target = np.zeros((20, 20), dtype=bool)
    target[5:10, 5:10] = True

    class Perfect(ScriptedPredictor):
        def predict(self, **kwargs):
            masks, scores, logits = super().predict(**kwargs)
            masks[:] = target
            return masks, scores, logits

    predictor = Perfect((20, 20))
    (session,) = click_protocol(predictor, [target], clicks=5)
    assert len(predictor.calls) == 1 and len(session.masks_per_click) == 1


def test_baselines_and_settings():
    target = disc((30, 30), (15, 15), 8)
    box, ellipse = baseline_protocol("baseline-box", [target])[0], baseline_protocol("baseline-ellipse", [target])[0]
    assert box.mask.sum() == 17 * 17 and ellipse.mask.sum() < box.mask.sum()
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_protocol("box", [target])
    with pytest.raises(ValueError, match="unknown prompt protocol"):
        EvalSettings(prompts=("scribble",))
    with pytest.raises(ValueError, match="--preprocessing"):
        EvalSettings(preprocessing="resize")


def test_model_names_are_short_and_unique(tmp_path):
    assert model_names([tmp_path / "a" / "m", tmp_path / "b" / "m"]) == ["a/m", "b/m"]
    assert model_names([tmp_path / "x"]) == ["x"]
    with pytest.raises(ValueError, match="given twice"):
        model_names([tmp_path / "x", tmp_path / "x"])
    with pytest.raises(ValueError, match="baselines"):
        model_names([tmp_path / "baseline-box"])
