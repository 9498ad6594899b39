"""Options every reader honours on the label layers of its frames (applied by the `Reader` wrapper).

keep_largest_component: keep only the largest connected component of each category (Fast-U-Net: one
    circumference per image; specks elsewhere are annotation noise)
min_foreground_fraction: a frame whose labelled pixels cover less of the image than this fraction is treated as
    unannotated (CardiacUDC: single stray labelled pixels); the builder counts it as an empty frame
"""

import numpy as np
from scipy import ndimage

from ..instances import CONNECTIVITY
from .base import Frame


def largest_component(layer: np.ndarray) -> np.ndarray:
    components, count = ndimage.label(layer, structure=CONNECTIVITY)
    if count <= 1:
        return layer
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components == int(np.argmax(sizes))


def finish_frame(frame: Frame, spec: dict) -> Frame:
    if spec.get("keep_largest_component"):
        frame.layers = {key: largest_component(layer) for key, layer in frame.layers.items()}
    fraction = spec.get("min_foreground_fraction")
    if fraction and frame.layers:
        foreground = np.logical_or.reduce(list(frame.layers.values()))
        if foreground.mean() < float(fraction):
            frame.layers = {}
    return frame
