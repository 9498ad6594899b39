"""Polygon rasterising shared by the LabelMe, COCO and point-list readers."""

import numpy as np

from .base import SkipItem, lazy_module

cv2 = lazy_module("cv2")  # the data extra: imported on first use


def fill_polygons(polygons, shape: tuple) -> np.ndarray:
    """List of [[x, y], ...] polygons (pixel coordinates) -> bool[H, W] union, filled."""
    canvas = np.zeros(shape, dtype=np.uint8)
    for polygon in polygons:
        points = np.round(np.asarray(polygon, dtype=np.float64).reshape(-1, 2)).astype(np.int32)
        if len(points) < 3:
            raise SkipItem(f"bad polygon: {len(points)} point(s), need at least 3")
        cv2.fillPoly(canvas, [points], 1)
    return canvas.astype(bool)


def add_layer(layers: dict, key: str, mask: np.ndarray) -> None:
    layers[key] = layers[key] | mask if key in layers else mask
