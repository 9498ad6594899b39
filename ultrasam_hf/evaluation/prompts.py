"""Prompt sampling from ground-truth masks: points, boxes, and corrective clicks (numpy only, no torch).

Used by the evaluation protocols and by training. Coordinate conventions (SAM's):

* Masks are (H, W) binary arrays (validated by `metrics.as_binary_mask`).
* A point is `(x, y)`: x is the column index, y the row index of a pixel centre.
* A box is `[x0, y0, x1, y1]` (XYXY) in the same pixel coordinates, inclusive: a tight box of a mask has
  x0 / x1 the first / last column holding a mask pixel. The box covers pixels from x0 - 0.5 to x1 + 0.5.
* A click is `(x, y, label)`: label 1 = positive (add this region), 0 = negative (remove it).

Protocols of the UltraSam paper: test-time point = `centroid_point`, test-time box = `box_from_mask`;
training point = `random_point` (with sub-pixel jitter), training box = `jittered_box`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .metrics import as_binary_mask, check_pair

Point = tuple[float, float]
Click = tuple[int, int, int]

_EIGHT_CONNECTED = ndimage.generate_binary_structure(2, 2)


def _non_empty(mask: np.ndarray, what: str) -> np.ndarray:
    mask = as_binary_mask(mask)
    if not mask.any():
        raise ValueError(f"{what} needs a non-empty mask, got an empty mask of shape {mask.shape}")
    return mask


def _check_rng(rng: np.random.Generator) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng)}")
    return rng


def box_from_mask(mask: np.ndarray) -> list[float]:
    """Tight inclusive box [x0, y0, x1, y1] (floats) of a non-empty (H, W) mask; ValueError if empty."""
    mask = _non_empty(mask, "box_from_mask")
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return [float(cols[0]), float(rows[0]), float(cols[-1]), float(rows[-1])]


def jittered_box(mask: np.ndarray, rng: np.random.Generator, fraction: float = 0.05) -> list[float]:
    """Tight box of `mask` with each corner coordinate moved uniformly by ±fraction of the box size.

    x0 and x1 move by U(-fraction, fraction) * (x1 - x0), y0 and y1 by U(-fraction, fraction) * (y1 - y0)
    (UltraSam's training boxes, fraction 0.05), then the box is clipped to [0, W - 1] x [0, H - 1]. With
    fraction <= 0.5 the corners never cross, so x0 <= x1 and y0 <= y1 always hold.
    """
    if not 0.0 <= fraction <= 0.5:
        raise ValueError(f"fraction must be in [0, 0.5], got {fraction!r}")
    rng = _check_rng(rng)
    mask = as_binary_mask(mask)
    x0, y0, x1, y1 = box_from_mask(mask)
    width, height = x1 - x0, y1 - y0
    dx0, dx1 = rng.uniform(-fraction, fraction, size=2) * width
    dy0, dy1 = rng.uniform(-fraction, fraction, size=2) * height
    max_x, max_y = mask.shape[1] - 1, mask.shape[0] - 1
    return [
        float(np.clip(x0 + dx0, 0, max_x)),
        float(np.clip(y0 + dy0, 0, max_y)),
        float(np.clip(x1 + dx1, 0, max_x)),
        float(np.clip(y1 + dy1, 0, max_y)),
    ]


POINT_SAMPLINGS = ("uniform", "interior")


def random_point(
    mask: np.ndarray, rng: np.random.Generator, subpixel_jitter: bool = False, sampling: str = "uniform"
) -> Point:
    """A random pixel (x, y) of a non-empty mask.

    `sampling="uniform"` draws every mask pixel with equal probability (UltraSam's training points);
    `"interior"` weights each pixel by its distance to the background, so clicks near the middle of the
    structure, where annotators click, are more likely and boundary pixels (whose extent is ambiguous) rarer.
    With `subpixel_jitter`, U(-0.5, 0.5) is added to each coordinate (the point stays inside the chosen
    pixel's area), as in UltraSam's training points.
    """
    if sampling not in POINT_SAMPLINGS:
        raise ValueError(f"sampling must be one of {POINT_SAMPLINGS}, got {sampling!r}")
    mask = _non_empty(mask, "random_point")
    rng = _check_rng(rng)
    rows, cols = np.nonzero(mask)
    if sampling == "interior":
        # on the mask's box padded by one background pixel: the same distances as on the whole image (the nearest
        # background pixel outside the box lies on that ring), and pixels on the image border count as one away
        top, left = rows.min(), cols.min()
        crop = np.pad(mask[top : rows.max() + 1, left : cols.max() + 1], 1)
        weights = ndimage.distance_transform_edt(crop)[rows - top + 1, cols - left + 1]
        index = int(rng.choice(rows.size, p=weights / weights.sum()))
    else:
        index = int(rng.integers(rows.size))
    x, y = float(cols[index]), float(rows[index])
    if subpixel_jitter:
        jx, jy = rng.uniform(-0.5, 0.5, size=2)
        x, y = x + float(jx), y + float(jy)
    return (x, y)


def centroid_point(mask: np.ndarray) -> Point:
    """Centroid (x, y) of a non-empty mask, snapped to the nearest mask pixel when it falls outside.

    The centroid is the mean pixel position (floats). It counts as inside when the pixel it lies in
    (rounded coordinates) belongs to the mask; otherwise (rings, crescents, several components) the
    nearest mask pixel centre to that pixel is returned (Euclidean, ties broken by scipy's scan order).
    """
    mask = _non_empty(mask, "centroid_point")
    rows, cols = np.nonzero(mask)
    cy, cx = float(rows.mean()), float(cols.mean())
    iy, ix = int(round(cy)), int(round(cx))
    if mask[iy, ix]:
        return (cx, cy)
    _, (near_rows, near_cols) = ndimage.distance_transform_edt(~mask, return_indices=True)
    return (float(near_cols[iy, ix]), float(near_rows[iy, ix]))


def interior_point(region: np.ndarray) -> tuple[int, int]:
    """The pixel (x, y) of a non-empty region farthest from its boundary (the image border counts as
    boundary): the argmax of the distance transform. Ties (e.g. the ridge of an elongated rectangle) go
    to the tied pixel nearest to the mean of the tied pixels, then to the first in row-major order."""
    region = _non_empty(region, "interior_point")
    padded = np.pad(region, 1, constant_values=False)
    distance = ndimage.distance_transform_edt(padded)[1:-1, 1:-1]
    tied = np.argwhere(distance == distance.max())
    offsets = ((tied - tied.mean(axis=0)) ** 2).sum(axis=1)
    y, x = tied[int(np.argmin(offsets))]
    return (int(x), int(y))


def largest_component(region: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a non-empty bool region (lowest label on ties)."""
    labels, count = ndimage.label(region, structure=_EIGHT_CONNECTED)
    if count == 0:
        raise ValueError(f"largest_component needs a non-empty region, got shape {region.shape}")
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)


def next_click(pred: np.ndarray, target: np.ndarray) -> Click | None:
    """The next corrective click of an interactive session, or None when `pred` equals `target`.

    False negatives (target & ~pred) and false positives (pred & ~target) are computed; the larger of
    the two by pixel count is kept (false negatives on ties); within it, the largest 8-connected
    component; the click is the point of that component farthest from its boundary (SAM / RITM
    convention, `interior_point`). Label 1 for a false-negative region, 0 for a false-positive one.
    """
    pred, target = check_pair(pred, target)
    false_negative = target & ~pred
    false_positive = pred & ~target
    fn_count, fp_count = int(false_negative.sum()), int(false_positive.sum())
    if fn_count == 0 and fp_count == 0:
        return None
    region, label = (false_negative, 1) if fn_count >= fp_count else (false_positive, 0)
    x, y = interior_point(largest_component(region))
    return (x, y, label)
