"""Label masks -> instances: connected components of each label value, encoded as COCO RLE (UltraSam convention)."""

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from .schema import INSTANCE_PALETTE

# 8-connectivity: a diagonal touch is the same structure (thin vessels, needle outlines).
CONNECTIVITY = np.ones((3, 3), dtype=bool)


@dataclass
class Instances:
    objects: list = field(default_factory=list)
    # (category, area) of components under `min_area`: reported in the manifest, never silently lost.
    dropped: list = field(default_factory=list)
    # pixel value k = objects[k - 1], 0 = background, later objects on top (schema.py `instance_map`); None: no layer
    ids: np.ndarray | None = None


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


def encode_instance_map(ids: np.ndarray) -> bytes:
    """Instance ids `HxW` (0 = background) -> the lossless PNG stored as `instance_map`: palette (`P`) mode with
    `INSTANCE_PALETTE` up to 255 objects, 16-bit grey beyond (see schema.py)."""
    ids = np.asarray(ids)
    if ids.ndim != 2 or (ids.size and ids.min() < 0):
        raise ValueError(f"an instance map is a 2-D array of ids >= 0, got shape {ids.shape}")
    top = int(ids.max()) if ids.size else 0
    if top > 65535:
        raise ValueError(f"{top} objects: a 16-bit instance map holds at most 65535")
    if top <= 255:
        image = Image.fromarray(ids.astype(np.uint8))
        image.putpalette(INSTANCE_PALETTE[: 3 * max(top + 1, 2)])  # the entries used: a short PLTE chunk
    else:
        image = Image.fromarray(ids.astype(np.uint16))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def instance_ids(value) -> np.ndarray | None:
    """A row (its `instance_map`), a decoded `instance_map` (PIL image) or its stored `{"bytes": ...}` -> the instance
    ids `HxW` (`uint8`, or `uint16` past 255 objects); None for a row built before the maps existed."""
    if isinstance(value, dict) and "instance_map" in value:
        value = value["instance_map"]
    if value is None:
        return None
    if isinstance(value, dict):
        if value.get("bytes") is None:
            return None
        with Image.open(io.BytesIO(value["bytes"])) as image:
            return instance_ids(image)
    if value.mode not in ("P", "L", "I;16", "I"):
        raise ValueError(f"an instance map is a palette or grey PNG, got mode {value.mode!r}")
    ids = np.asarray(value)  # a palette image gives its indices, not colours
    return ids.astype(np.uint16) if value.mode in ("I;16", "I") else ids


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
            region = (
                slice(top.start + rows.start, top.start + rows.stop),
                slice(left.start + cols.start, left.start + cols.stop),
            )
            component = components[rows, cols] == index
            mask = np.zeros(layer.shape, dtype=np.uint8, order="F")
            mask[region] = component
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
            if result.ids is None:
                result.ids = np.zeros(layer.shape, dtype=np.int32)
            result.ids[region][component] = len(result.objects)  # later objects on top
    return result
