"""Prompt-only baselines: the mask a box prompt implies without any model.

Boxes follow `prompts.py`: [x0, y0, x1, y1], inclusive pixel coordinates, covering x0 - 0.5 .. x1 + 0.5.
A pixel belongs to a baseline mask when its centre (integer x, y) lies inside the shape.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _check_box_and_shape(box: Sequence[float], shape: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    coords = np.asarray(box, dtype=float)
    if coords.shape != (4,) or not np.isfinite(coords).all():
        raise ValueError(f"box must be 4 finite numbers [x0, y0, x1, y1], got {box!r}")
    if coords[2] < coords[0] or coords[3] < coords[1]:
        raise ValueError(f"box must satisfy x0 <= x1 and y0 <= y1, got {box!r}")
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (H, W) with H, W >= 1, got {shape!r}")
    return coords, (int(shape[0]), int(shape[1]))


def filled_box_mask(box: Sequence[float], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool mask of the pixels whose centre lies in [x0 - 0.5, x1 + 0.5] x [y0 - 0.5, y1 + 0.5].

    For an integer box this is every pixel from column x0 to x1 and row y0 to y1, inclusive.
    """
    (x0, y0, x1, y1), (height, width) = _check_box_and_shape(box, shape)
    ys = np.arange(height)[:, None]
    xs = np.arange(width)[None, :]
    return (xs >= x0 - 0.5) & (xs <= x1 + 0.5) & (ys >= y0 - 0.5) & (ys <= y1 + 0.5)


def inscribed_ellipse_mask(box: Sequence[float], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool mask of the ellipse inscribed in the box's pixel extent.

    Centre ((x0 + x1) / 2, (y0 + y1) / 2), semi-axes a = (x1 - x0 + 1) / 2 and b = (y1 - y0 + 1) / 2, so
    its area is about pi * a * b pixels (the box covers (2a) * (2b) pixels).
    """
    (x0, y0, x1, y1), (height, width) = _check_box_and_shape(box, shape)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    a, b = (x1 - x0 + 1.0) / 2.0, (y1 - y0 + 1.0) / 2.0
    ys = np.arange(height)[:, None]
    xs = np.arange(width)[None, :]
    return ((xs - cx) / a) ** 2 + ((ys - cy) / b) ** 2 <= 1.0
