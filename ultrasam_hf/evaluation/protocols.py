"""Prompt protocols of the evaluation: ground-truth masks of one image in, one predicted mask per instance out.

Every protocol takes a predictor whose `set_image` was already called (anything with
`UltraSamPredictor.predict`'s signature) and the image's (H, W) bool target masks, and prompts all instances in
one batched `predict` call per step:

* `box_protocol`: the tight box of each mask (`prompts.box_from_mask`, no jitter).
* `point_protocol`: one positive click at the centroid, snapped into the mask (`prompts.centroid_point`).
* `click_protocol`: k clicks; the first at the centroid, each next one at the centre of the largest error
  region of the current prediction (`prompts.next_click`, positive in a miss, negative in a false alarm), with
  all clicks so far and the previous low-res logits (`mask_input`) given to the model. A session stops early
  when its mask equals the target.
* `baseline_protocol`: no model, the filled box or the ellipse inscribed in the box.

`multimask=None` (default) leaves the choice to the predictor (SAM's rule: three candidate masks for a single click
when the checkpoint was trained for them, else one); `True` forces SAM's three masks for points and the first click,
`False` the single-mask output. Of three candidates the one with the highest predicted IoU is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .baselines import filled_box_mask, inscribed_ellipse_mask
from .prompts import box_from_mask, centroid_point, next_click

PROMPTS = ("box", "point", "clicks")
BASELINES = {"baseline-box": filled_box_mask, "baseline-ellipse": inscribed_ellipse_mask}


@dataclass
class Prediction:
    """One instance's result: the final mask, the prompt that produced it, and (clicks) the mask after each click."""

    mask: np.ndarray
    box: list[float] | None = None
    points: np.ndarray | None = None  # (N, 2) (x, y)
    labels: np.ndarray | None = None  # (N,) 1 positive, 0 negative
    masks_per_click: list[np.ndarray] = field(default_factory=list)


def _best(masks: np.ndarray, scores: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, C, H, W) masks, (K, C) scores, (K, C, h, w) logits -> the highest-scoring (K, H, W) masks and logits."""
    index = np.argmax(scores, axis=1) if masks.shape[1] > 1 else np.zeros(len(masks), dtype=int)
    rows = np.arange(len(masks))
    return masks[rows, index].astype(bool), logits[rows, index]


def box_protocol(predictor, targets: Sequence[np.ndarray], multimask: bool | None = None) -> list[Prediction]:
    """Tight-box prompts, all instances in one call."""
    boxes = np.array([box_from_mask(target) for target in targets], dtype=np.float64)
    masks, _ = _best(*predictor.predict(boxes=boxes, multimask_output=multimask))
    return [Prediction(mask=mask, box=box.tolist()) for mask, box in zip(masks, boxes)]


def point_protocol(predictor, targets: Sequence[np.ndarray], multimask: bool | None = None) -> list[Prediction]:
    """One positive click per instance at its (snapped) centroid."""
    points = np.array([[centroid_point(target)] for target in targets], dtype=np.float64)  # (K, 1, 2)
    labels = np.ones(points.shape[:2], dtype=np.int64)
    masks, _ = _best(*predictor.predict(points=points, labels=labels, multimask_output=multimask))
    return [Prediction(mask=mask, points=p, labels=lab) for mask, p, lab in zip(masks, points, labels)]


def click_protocol(
    predictor, targets: Sequence[np.ndarray], clicks: int, multimask: bool | None = None
) -> list[Prediction]:
    """Interactive sessions of up to `clicks` clicks, all instances still running batched in each step.

    `multimask` applies to the first click only (later clicks are unambiguous, as in SAM's interactive setup).
    """
    if clicks < 1:
        raise ValueError(f"clicks must be >= 1, got {clicks}")
    targets = [np.asarray(t, dtype=bool) for t in targets]
    points = [[centroid_point(target)] for target in targets]
    labels = [[1] for _ in targets]
    per_click: list[list[np.ndarray]] = [[] for _ in targets]
    logits: list[np.ndarray | None] = [None for _ in targets]
    active = list(range(len(targets)))
    for step in range(clicks):
        batch_points = np.array([points[i] for i in active], dtype=np.float64)  # (A, step + 1, 2)
        batch_labels = np.array([labels[i] for i in active], dtype=np.int64)
        mask_input = None if step == 0 else np.stack([logits[i] for i in active])
        outputs = predictor.predict(
            points=batch_points,
            labels=batch_labels,
            mask_input=mask_input,
            multimask_output=multimask if step == 0 else False,
        )
        masks, low_res = _best(*outputs)
        still_active = []
        for row, i in enumerate(active):
            per_click[i].append(masks[row])
            logits[i] = low_res[row]
            click = next_click(masks[row], targets[i]) if step + 1 < clicks else None
            if click is not None:
                points[i].append((float(click[0]), float(click[1])))
                labels[i].append(int(click[2]))
                still_active.append(i)
        active = still_active
        if not active:
            break
    return [
        Prediction(
            mask=per_click[i][-1],
            points=np.array(points[i][: len(per_click[i])], dtype=np.float64),
            labels=np.array(labels[i][: len(per_click[i])], dtype=np.int64),
            masks_per_click=per_click[i],
        )
        for i in range(len(targets))
    ]


def baseline_protocol(name: str, targets: Sequence[np.ndarray]) -> list[Prediction]:
    """The box prompt's model-free baseline `name` (`baseline-box` or `baseline-ellipse`) for every instance."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    predictions = []
    for target in targets:
        box = box_from_mask(target)
        predictions.append(Prediction(mask=BASELINES[name](box, np.shape(target)), box=box))
    return predictions


def run_protocol(
    predictor, prompt: str, targets: Sequence[np.ndarray], clicks: int = 5, multimask: bool | None = None
):
    """Dispatch on `prompt` (one of `PROMPTS`)."""
    if prompt == "box":
        return box_protocol(predictor, targets, None if multimask else multimask)  # --multimask: clicks only
    if prompt == "point":
        return point_protocol(predictor, targets, multimask)
    if prompt == "clicks":
        return click_protocol(predictor, targets, clicks, multimask)
    raise ValueError(f"unknown prompt protocol {prompt!r}; choose from {PROMPTS}")
