"""Decoding raw 2-D images and label masks, whatever their mode (1-bit, grey, 16-bit, RGB, palette, DICOM).

Images are decoded by the package's one decoder, `ultrasam_hf.models.image_loading.load_frames`, so that a stored
image has exactly the pixels `ultrasam segment` and the processor see on the same file (DICOM MONOCHROME1 inverted,
VOI LUT / window applied); grey images are kept `HxW`.
"""

from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from ...models.image_loading import load_frames, min_max_to_uint8
from .base import SkipItem

PASSTHROUGH_FORMATS = ("PNG", "JPEG")


def read_image(path: Path) -> tuple:
    """-> (uint8 [H, W] or [H, W, 3], source bytes to store as is or None, pixel spacing in mm or None).

    A multi-frame file (DICOM cine, multi-page TIFF) is skipped with a reason naming its frame count: a still reader
    pairs one image with one annotation, which cannot say which frame it labels, so no frame is silently dropped.
    """
    path = Path(path)
    try:
        frames, spacing = load_frames(path, rgb=False, return_spacing=True)
    except (ValueError, RuntimeError, OSError, ImportError) as error:
        raise SkipItem(f"unreadable image: {path.name}: {error}") from None
    if len(frames) != 1:
        raise SkipItem(
            f"multi-frame image: {path.name} has {len(frames)} frames and one annotation that cannot say which frame "
            f"it labels: none of its {len(frames)} frames stored"
        )
    try:
        with Image.open(path) as image:  # the header only: are the source's own bytes storable as they are?
            passthrough = image.format in PASSTHROUGH_FORMATS and image.mode in ("L", "RGB")
    except OSError:  # DICOM
        passthrough = False
    return frames[0], (path.read_bytes() if passthrough else None), spacing


def to_uint8(image: Image.Image) -> np.ndarray:
    """A PIL image (e.g. one embedded in an annotation file) as uint8 [H, W] or [H, W, 3], as `read_image` decodes."""
    frames = load_frames(image, rgb=False)
    if len(frames) != 1:
        raise SkipItem(f"multi-frame image: {len(frames)} frames for one annotation: none stored")
    return frames[0]


def rescale_to_uint8(array: np.ndarray) -> np.ndarray:
    return min_max_to_uint8(array)


def read_dicom(path: Path) -> tuple:
    """Pixels and spacing only: no DICOM tag (patient name, ids, dates) is carried into the output."""
    return read_image(path)


def read_label_image(path: Path, colour_coded: bool) -> np.ndarray:
    """Raw mask -> int label array [H, W], or uint8 [H, W, 3] when the masks are colour-coded.

    1-bit masks become 0/255 (so cards can use 255 for every binary release); palette masks keep their palette
    indices (USGRA: 0 background, 1 nerve, 2 vessel) unless the card says they are colour-coded.
    """
    try:
        with Image.open(path) as image:
            image.load()
            if colour_coded:
                return np.asarray(image.convert("RGB"))
            if image.mode == "1":
                return np.asarray(image, dtype=np.uint8) * np.uint8(255)
            if image.mode in ("RGB", "RGBA"):
                rgb = np.asarray(image.convert("RGB"))
                if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
                    raise SkipItem(f"colour mask without colour categories: {path.name}")
                return rgb[..., 0].astype(np.int64)
            if image.mode in ("LA", "PA"):
                return np.asarray(image)[..., 0].astype(np.int64)
            return np.asarray(image).astype(np.int64)
    except (OSError, SyntaxError, ValueError) as error:
        raise SkipItem(f"unreadable mask: {path.name}: {error}") from None


def fill_holes(layer: np.ndarray) -> np.ndarray:
    """`ndimage.binary_fill_holes` (4-connected background), 4-5x faster: labels the background once, in the bbox.

    Background inside the layer's bounding box that touches the box's edge is connected to the image border (the
    rest of the image is background), so only the box's own background components need looking at.
    """
    layer = np.asarray(layer, dtype=bool)
    rows, cols = np.flatnonzero(layer.any(axis=1)), np.flatnonzero(layer.any(axis=0))
    if rows.size == 0:
        return layer.copy()
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    background, count = ndimage.label(~layer[box])
    is_hole = np.ones(count + 1, dtype=bool)
    is_hole[[0, *background[0], *background[-1], *background[:, 0], *background[:, -1]]] = False
    filled = layer.copy()
    filled[box] |= is_hole[background]
    return filled


def label_counts(labels: np.ndarray) -> tuple:
    """(values, pixel counts) as np.unique(labels, return_counts=True); small non-negative labels by histogram."""
    if labels.dtype.kind in "ui" and labels.size and 0 <= labels.min() and labels.max() < 1 << 16:
        counts = np.bincount(labels.ravel())
        values = np.flatnonzero(counts)
        return values, counts[values]
    return np.unique(labels, return_counts=True)


def labels_to_layers(labels: np.ndarray, categories: dict, spec: dict) -> tuple:
    """Label array -> ({category key: bool mask}, {unmapped raw value: pixel count}).

    Spec options: `threshold` (values above it are foreground, key 255), `background` (default 0),
    `colour_tolerance` (max per-channel difference for colour-coded masks), `fill_holes`.
    """
    layers, unmapped = {}, {}
    if labels.ndim == 3:  # colour-coded
        tolerance = int(spec.get("colour_tolerance", 0))
        claimed = np.zeros(labels.shape[:2], dtype=bool)
        for key in categories:
            colour = np.array([int(part) for part in key.split(",")], dtype=np.int16)
            layer = np.all(np.abs(labels.astype(np.int16) - colour) <= tolerance, axis=-1)
            layers[key] = layer
            claimed |= layer
        leftover = ~claimed & np.any(labels > tolerance, axis=-1)
        if leftover.any():
            unmapped["other colours"] = int(leftover.sum())
    else:
        if spec.get("threshold") is not None:
            labels = np.where(labels > float(spec["threshold"]), 255, 0)
        background = int(spec.get("background", 0))
        for value, count in zip(*label_counts(labels)):
            if int(value) != background and str(int(value)) not in categories:
                unmapped[str(int(value))] = int(count)
        for key in categories:
            layers[key] = labels == int(key)
    if spec.get("fill_holes"):
        layers = {key: fill_holes(layer) for key, layer in layers.items()}
    return {key: layer for key, layer in layers.items() if layer.any()}, unmapped


def read_grey_mask(path: Path) -> np.ndarray:
    """Binary-per-file mask (any mode, JPEG colour noise included) -> int grey level [H, W], to threshold."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode == "1":
                return np.asarray(image, dtype=np.uint8).astype(np.int64) * 255
            if image.mode in ("L", "P", "I", "I;16", "F"):  # palette masks: their indices, as read_label_image
                return np.asarray(image).astype(np.int64)
            if image.mode in ("LA", "PA"):
                return np.asarray(image)[..., 0].astype(np.int64)
            return np.asarray(image.convert("L")).astype(np.int64)
    except (OSError, SyntaxError, ValueError) as error:
        raise SkipItem(f"unreadable mask: {path.name}: {error}") from None
