"""Label masks -> instances: connected components of each label value, encoded as COCO RLE (UltraSam convention)."""

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

# 8-connectivity: a diagonal touch is the same structure (thin vessels, needle outlines).
CONNECTIVITY = np.ones((3, 3), dtype=bool)


@dataclass
class Instances:
    objects: list = field(default_factory=list)
    # (category, area) of components under `min_area`: reported in the manifest, never silently lost.
    dropped: list = field(default_factory=list)


def _mask_utils():
    """pycocotools' RLE codec, imported where masks are encoded or decoded (an extra: `ultrasam-hf[eval]`)."""
    try:
        from pycocotools import mask as mask_utils
    except ImportError as error:
        raise ImportError(
            "Encoding or decoding US-43d masks needs pycocotools: `pip install ultrasam-hf[eval]`."
        ) from error
    return mask_utils


def encode_mask(mask: np.ndarray) -> dict:
    """bool[H, W] -> COCO RLE with `counts` as str (what FEATURES stores)."""
    rle = _mask_utils().encode(mask.astype(np.uint8, order="F", copy=False))
    return {"counts": rle["counts"].decode("ascii"), "size": [int(rle["size"][0]), int(rle["size"][1])]}


def bounding_slices(layer: np.ndarray) -> tuple:
    """The smallest (rows, cols) slices holding every True pixel of a non-empty layer."""
    rows, cols = np.flatnonzero(layer.any(axis=1)), np.flatnonzero(layer.any(axis=0))
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def decode_instance_mask(obj: dict) -> np.ndarray:
    """One `objects` entry of a row (or its `mask` dict) -> bool[H, W]."""
    rle = obj.get("mask", obj)
    counts = rle["counts"]
    coco_rle = {"counts": counts.encode("ascii") if isinstance(counts, str) else counts, "size": list(rle["size"])}
    return _mask_utils().decode(coco_rle).astype(bool)


def layers_to_instances(layers: dict, categories: dict, anatomy: dict, min_area: int, class_label=None) -> Instances:
    """Split each category layer into connected components.

    Args:
        layers: category key (raw label value, colour or polygon label, as a str) -> bool[H, W] union mask.
        categories: category key -> dataset category name.
        anatomy: dataset category name -> shared anatomy term.
        min_area: components with fewer pixels are recorded in `dropped` instead of kept.
        class_label: downstream label given to every instance of the image (None when the dataset has none).
    """
    result = Instances()
    for key in sorted(layers):
        category, layer = categories[key], layers[key]
        if not layer.any():
            continue
        # labelled inside the layer's bounding box only: lesions are small, images are not
        top, left = bounding_slices(layer)
        components, count = ndimage.label(layer[top, left], structure=CONNECTIVITY)
        areas = np.bincount(components.ravel(), minlength=count + 1)
        slices = ndimage.find_objects(components)
        for index in range(1, count + 1):
            area = int(areas[index])
            if area < min_area:
                result.dropped.append({"category": category, "area": area})
                continue
            rows, cols = slices[index - 1]
            mask = np.zeros(layer.shape, dtype=np.uint8, order="F")
            mask[top.start + rows.start : top.start + rows.stop, left.start + cols.start : left.start + cols.stop] = (
                components[rows, cols] == index
            )
            result.objects.append(
                {
                    "mask": encode_mask(mask),
                    "bbox": [
                        float(left.start + cols.start),
                        float(top.start + rows.start),
                        float(left.start + cols.stop),
                        float(top.start + rows.stop),
                    ],
                    "area": area,
                    "category": category,
                    "anatomy": anatomy[category],
                    "class_label": class_label,
                }
            )
    return result
