"""Per-instance binary-mask metrics: Dice, IoU, normalised surface Dice, HD95, and clicks-to-reach.

Conventions (stated once here, honoured by every function in this module and tested in
`tests/evaluation/test_metrics.py`):

* Masks are 2-D numpy arrays of shape (H, W), `pred` and `target` of the same shape. Accepted dtypes:
  bool, or any integer/float array whose values are all 0 or 1. Anything else (other ndim, mismatched
  shapes, NaN, values outside {0, 1}) raises `ValueError` naming the shapes/values.
* `spacing=(sy, sx)` is the physical size of a pixel along rows (y) and columns (x), e.g. in mm. With
  `spacing=None` distances are in pixels (spacing (1, 1)). Tolerances and HD95 are in the same unit.
* Surface of a mask: its boundary pixels, i.e. mask pixels with at least one 4-neighbour outside the mask
  (pixels on the image border count as boundary). A one-pixel object is its own surface.
* Distance from a surface pixel to the other surface: Euclidean distance between pixel centres, computed
  with `scipy.ndimage.distance_transform_edt(..., sampling=spacing)`.
* Empty masks:

  ================  =====  =====  =====  ==================
  case              dice   iou    nsd    hd95
  ================  =====  =====  =====  ==================
  both empty        1      1      1      0
  exactly one empty 0      0      0      image diagonal
  ================  =====  =====  =====  ==================

  The image diagonal is `sqrt((H * sy) ** 2 + (W * sx) ** 2)`: strictly larger than any distance two
  non-empty masks in the same image can have, so a missed or hallucinated object is the worst finite
  score and means stay finite. (`hd95` never returns inf; aggregation still counts non-finite values if
  other code produces them.)
* HD95 is the MONAI convention: the larger of the two directed 95th percentiles (linear interpolation,
  `numpy.percentile` default) of surface-to-surface distances.
* NSD (Nikolov et al. 2021, surface pixels counted as unit elements): the fraction of surface pixels of
  both masks lying within `tolerance` of the other surface, `(|{p in S_pred: d(p, S_gt) <= tau}| +
  |{q in S_gt: d(q, S_pred) <= tau}|) / (|S_pred| + |S_gt|)`.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import numpy as np
from scipy import ndimage

Spacing = tuple[float, float]
ScoreName = Literal["dice", "iou"]

_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def as_binary_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """Validate one (H, W) binary mask and return it as a bool array.

    Raises ValueError for a non-2-D array, NaN values, or values other than 0/1.
    """
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) array, got shape {array.shape}")
    if array.dtype == bool:
        return array
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{name} must be bool or numeric, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and np.isnan(array).any():
        raise ValueError(f"{name} of shape {array.shape} contains NaN")
    if not np.isin(array, (0, 1)).all():
        found = np.unique(array)[:5].tolist()
        raise ValueError(f"{name} of shape {array.shape} must hold only 0/1 values, found e.g. {found}")
    return array.astype(bool)


def check_pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (pred, target) pair of (H, W) binary masks of equal shape; return them as bool."""
    pred_shape, target_shape = np.shape(pred), np.shape(target)
    if pred_shape != target_shape:
        raise ValueError(f"pred and target shapes differ: pred {pred_shape} vs target {target_shape}")
    return as_binary_mask(pred, "pred"), as_binary_mask(target, "target")


def check_spacing(spacing: Sequence[float] | None) -> Spacing:
    """Return `spacing` as (sy, sx) floats, (1.0, 1.0) for None; ValueError unless two positive finite values."""
    if spacing is None:
        return (1.0, 1.0)
    values = tuple(float(s) for s in spacing)
    if len(values) != 2 or not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"spacing must be two positive finite numbers (sy, sx), got {spacing!r}")
    return values  # type: ignore[return-value]


def image_diagonal(shape: tuple[int, int], spacing: Sequence[float] | None = None) -> float:
    """Diagonal of an (H, W) image in spacing units: sqrt((H * sy)**2 + (W * sx)**2)."""
    sy, sx = check_spacing(spacing)
    return math.hypot(shape[0] * sy, shape[1] * sx)


def dice(pred: np.ndarray, target: np.ndarray) -> float:
    """Dice coefficient 2|P∩T| / (|P| + |T|) of two (H, W) binary masks; 1.0 when both are empty."""
    pred, target = check_pair(pred, target)
    total = int(pred.sum()) + int(target.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, target).sum()) / total


def iou(pred: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union |P∩T| / |P∪T| of two (H, W) binary masks; 1.0 when both are empty."""
    pred, target = check_pair(pred, target)
    union = int(np.logical_or(pred, target).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(pred, target).sum()) / union


def surface(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of an (H, W) bool mask: pixels with a 4-neighbour outside (image border is outside)."""
    eroded = ndimage.binary_erosion(mask, structure=_FOUR_CONNECTED, border_value=0)
    return mask & ~eroded


def surface_distances(
    pred: np.ndarray, target: np.ndarray, spacing: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances of two non-empty (H, W) masks.

    Returns (d_pred_to_target, d_target_to_pred): 1-D float arrays with one entry per surface pixel of
    `pred` (resp. `target`), the distance from that pixel to the nearest surface pixel of the other mask.
    Raises ValueError when either mask is empty (the distances are undefined there).
    """
    pred, target = check_pair(pred, target)
    sampling = check_spacing(spacing)
    if not pred.any() or not target.any():
        raise ValueError("surface distances need two non-empty masks; handle empty masks before calling")
    pred_surface, target_surface = surface(pred), surface(target)
    to_target = ndimage.distance_transform_edt(~target_surface, sampling=sampling)
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=sampling)
    return to_target[pred_surface], to_pred[target_surface]


def _empty_case(pred: np.ndarray, target: np.ndarray) -> Literal["both", "one", "none"]:
    pred_any, target_any = bool(pred.any()), bool(target.any())
    if not pred_any and not target_any:
        return "both"
    if pred_any != target_any:
        return "one"
    return "none"


def _check_tolerance(tolerance: float) -> float:
    value = float(tolerance)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    return value


def normalized_surface_dice(
    pred: np.ndarray, target: np.ndarray, tolerance: float, spacing: Sequence[float] | None = None
) -> float:
    """Normalised surface Dice of two (H, W) masks at `tolerance` (pixels, or spacing units with `spacing`)."""
    pred, target = check_pair(pred, target)
    tau = _check_tolerance(tolerance)
    case = _empty_case(pred, target)
    if case != "none":
        return 1.0 if case == "both" else 0.0
    d_pred, d_target = surface_distances(pred, target, spacing)
    within = int((d_pred <= tau).sum()) + int((d_target <= tau).sum())
    return within / (d_pred.size + d_target.size)


def hausdorff95(pred: np.ndarray, target: np.ndarray, spacing: Sequence[float] | None = None) -> float:
    """95th-percentile Hausdorff distance of two (H, W) masks (pixels, or spacing units with `spacing`).

    0.0 when both are empty, the image diagonal when exactly one is (see the module docstring).
    """
    pred, target = check_pair(pred, target)
    case = _empty_case(pred, target)
    if case == "both":
        return 0.0
    if case == "one":
        return image_diagonal(pred.shape, spacing)
    d_pred, d_target = surface_distances(pred, target, spacing)
    return float(max(np.percentile(d_pred, 95), np.percentile(d_target, 95)))


def segmentation_metrics(
    pred: np.ndarray, target: np.ndarray, tolerance: float = 2.0, spacing: Sequence[float] | None = None
) -> dict[str, float]:
    """All four metrics of one instance, sharing one surface-distance computation.

    Returns {"dice", "iou", "nsd", "hd95"}; equal to calling the single-metric functions.
    """
    pred, target = check_pair(pred, target)
    tau = _check_tolerance(tolerance)
    check_spacing(spacing)
    scores = {"dice": dice(pred, target), "iou": iou(pred, target)}
    case = _empty_case(pred, target)
    if case == "both":
        return {**scores, "nsd": 1.0, "hd95": 0.0}
    if case == "one":
        return {**scores, "nsd": 0.0, "hd95": image_diagonal(pred.shape, spacing)}
    d_pred, d_target = surface_distances(pred, target, spacing)
    within = int((d_pred <= tau).sum()) + int((d_target <= tau).sum())
    scores["nsd"] = within / (d_pred.size + d_target.size)
    scores["hd95"] = float(max(np.percentile(d_pred, 95), np.percentile(d_target, 95)))
    return scores


_SCORERS = {"dice": dice, "iou": iou}


def click_scores(preds_per_click: Sequence[np.ndarray], target: np.ndarray, metric: ScoreName = "iou") -> list[float]:
    """Score of each prediction of an interactive session: element i is the score after click i + 1."""
    if metric not in _SCORERS:
        raise ValueError(f"metric must be one of {sorted(_SCORERS)}, got {metric!r}")
    return [_SCORERS[metric](pred, target) for pred in preds_per_click]


def clicks_to_reach(scores_per_click: Sequence[float], threshold: float, max_clicks: int | None = None) -> int:
    """Number of clicks (NoC) needed for the score to reach `threshold` (score >= threshold).

    `scores_per_click[i]` is the score after click i + 1 (see `click_scores`; the standard NoC@85 / NoC@90
    uses IoU, and the caller picks the metric there). Returns `max_clicks` when the threshold is never
    reached within the first `max_clicks` clicks; `max_clicks` defaults to `len(scores_per_click)`. A
    session that stopped early (e.g. because the mask became perfect) is fine: only reaching matters.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    scores = [float(s) for s in scores_per_click]
    if not scores:
        raise ValueError("scores_per_click is empty: at least one click is needed")
    if any(math.isnan(s) for s in scores):
        raise ValueError(f"scores_per_click contains NaN: {scores}")
    limit = len(scores) if max_clicks is None else int(max_clicks)
    if limit < 1:
        raise ValueError(f"max_clicks must be >= 1, got {max_clicks!r}")
    for click, score in enumerate(scores[:limit], start=1):
        if score >= threshold:
            return click
    return limit
