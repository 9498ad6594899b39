"""Ellipse masks (HC18 style), outline or filled: outlines are hole-filled, open outlines refitted as ellipses.

Card spec: as `image_mask_pairs`; `threshold` defaults to 127 (anti-aliased outlines), category key 255.
"""

from pathlib import Path

import numpy as np
from scipy import ndimage

from . import pairs
from .base import RawItem, lazy_module

cv2 = lazy_module("cv2")  # the data extra: imported on first use

OPTIONS = pairs.OPTIONS
list_items = pairs.list_items


def load_frames(root: Path, item: RawItem, spec: dict, categories: dict):
    spec = {"threshold": 127, **spec, "fill_holes": True}
    for frame in pairs.load_frames(root, item, spec, categories):
        frame.layers = {key: close_open_outline(layer) for key, layer in frame.layers.items()}
        yield frame


def close_open_outline(layer: np.ndarray) -> np.ndarray:
    """A filled (or hole-filled) ellipse survives 3 erosions; a thin outline with a gap does not: fit and fill it."""
    if ndimage.binary_erosion(layer, iterations=3).any():
        return layer
    points = np.argwhere(layer)[:, ::-1].astype(np.float32)
    if len(points) < 5:
        return layer
    filled = np.zeros(layer.shape, dtype=np.uint8)
    cv2.ellipse(filled, cv2.fitEllipse(points), color=1, thickness=-1)
    return filled.astype(bool) | layer
