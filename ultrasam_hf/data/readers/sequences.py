"""Slicing volumes, sequences and frame stacks into 2-D frames (shared by volume, npy and hdf5 readers)."""

import numpy as np

from .base import Frame, SkipItem, lazy_module
from .image_io import labels_to_layers, rescale_to_uint8
from .layers import largest_component

cv2 = lazy_module("cv2")  # the data extra: imported on first use

# Spec options of `frames_from_arrays`, declared by every reader that slices arrays.
SLICING_OPTIONS = frozenset(
    {"axis", "transpose", "flip", "zero_mask_outside_image", "fov_heuristic", "label_channels"}
    | {"threshold", "background", "colour_tolerance", "fill_holes"}
)
FLIPS = {"rows": (0,), "columns": (1,), "both": (0, 1)}
FOV_KERNEL = np.ones((12, 12), dtype=np.uint8)  # skimage square(12) of the FH-PS-AOP converter


def frames_from_arrays(
    image: np.ndarray, labels: np.ndarray, spec: dict, categories: dict, item_id: str, spacing=None, frames=None
):
    """One Frame per slice along `spec["axis"]` (default 0); empty slices are yielded too (the builder counts them).

    Spec options: `axis`; `transpose` (swap rows/columns of every slice); `flip`: "rows", "columns" or "both" (after
    transpose; "both" is the 180-degree turn mmcv calls a diagonal flip, used by the official converters of ASUS,
    CardiacUDC, EchoCP, MicroSeg, Segthy, regPro); `zero_mask_outside_image` (labels where the image is 0 are
    dropped, CAMUS); `fov_heuristic` (labels outside the ultrasound field of view are dropped, FH-PS-AOP, see
    `field_of_view`); `label_channels`: the label array has one more, leading axis of binary channels, channel c
    being category key "c" (regPro); plus the label options of `labels_to_layers`. A trailing axis of size 1
    ([N, H, W, 1] stacks, ASUS) is dropped. Intensities are min-max scaled per volume unless already uint8.
    """
    image, labels = drop_trailing_unit_axis(image), drop_trailing_unit_axis(labels)
    channels = bool(spec.get("label_channels"))
    if channels:
        if labels.shape[1:] != image.shape:
            raise SkipItem(f"mask size mismatch: label channels {labels.shape} vs image {image.shape}")
        labels = np.moveaxis(labels, 0, -1)  # [..., C]: slicing below keeps the channels together
    axis = int(spec.get("axis", 0))
    if image.ndim == 2:
        image, labels = image[None], labels[None]
        axis = 0
    if labels.shape[: image.ndim] != image.shape or labels.ndim != 3 + channels:
        raise SkipItem(f"mask size mismatch: mask {labels.shape} vs image {image.shape}")
    image = np.moveaxis(image, axis, 0)
    labels = np.moveaxis(labels, axis, 0)
    if image.dtype != np.uint8:
        image = rescale_to_uint8(image)
    flip = spec.get("flip")
    if flip is not None and flip not in FLIPS:
        raise ValueError(f"spec flip must be one of {sorted(FLIPS)}, got {flip!r}")
    indices = range(image.shape[0]) if frames is None else frames
    for index in indices:
        pixels, label_slice = image[index], labels[index]
        if spec.get("transpose"):
            pixels, label_slice = np.swapaxes(pixels, 0, 1), np.swapaxes(label_slice, 0, 1)
        if flip:
            pixels, label_slice = np.flip(pixels, FLIPS[flip]), np.flip(label_slice, FLIPS[flip])
        valid = np.ones(pixels.shape[:2], dtype=bool)
        if spec.get("zero_mask_outside_image"):
            valid &= pixels.reshape(pixels.shape[:2] + (-1,)).max(-1) > 0
        if spec.get("fov_heuristic"):
            valid &= field_of_view(pixels)
        if channels:
            layers, unmapped = channel_layers(label_slice, valid, categories)
        else:
            label_slice = np.where(valid, label_slice, 0)
            layers, unmapped = labels_to_layers(np.ascontiguousarray(label_slice).astype(np.int64), categories, spec)
        yield Frame(
            layers=layers,
            image=np.ascontiguousarray(pixels),
            frame_index=int(index),
            image_id=f"{item_id}#{int(index):05d}",
            pixel_spacing_mm=spacing,
            unmapped=unmapped,
        )


def drop_trailing_unit_axis(array: np.ndarray) -> np.ndarray:
    return array[..., 0] if array.ndim == 4 and array.shape[-1] == 1 else array


def channel_layers(label_slice: np.ndarray, valid: np.ndarray, categories: dict) -> tuple:
    layers, unmapped = {}, {}
    for channel in range(label_slice.shape[-1]):
        layer = (label_slice[..., channel] != 0) & valid
        if not layer.any():
            continue
        if str(channel) in categories:
            layers[str(channel)] = layer
        else:
            unmapped[f"channel {channel}"] = int(layer.sum())
    return layers, unmapped


def field_of_view(pixels: np.ndarray) -> np.ndarray:
    """FH-PS-AOP official heuristic: the largest non-zero region of the image, eroded by a 12x12 square (cuts off
    colour bars and text), its largest component dilated back, then its convex hull: labels outside are artefacts."""
    grey = pixels.reshape(pixels.shape[:2] + (-1,)).max(-1)
    region = largest_component(grey > 0)
    region = cv2.erode(region.astype(np.uint8), FOV_KERNEL)
    region = cv2.dilate(largest_component(region > 0).astype(np.uint8), FOV_KERNEL)
    hull = np.zeros(grey.shape, dtype=np.uint8)
    points = cv2.findNonZero(region)
    if points is not None:
        cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
    return hull.astype(bool)
