"""Slicing volumes, sequences and frame stacks into 2-D frames (shared by volume, npy and hdf5 readers)."""

import numpy as np

from .base import Frame, SkipItem
from .image_io import labels_to_layers, rescale_to_uint8


def frames_from_arrays(image: np.ndarray, labels: np.ndarray, spec: dict, categories: dict, item_id: str, spacing=None, frames=None):
    """Yield one Frame per slice along `spec["axis"]` (default 0); empty slices are yielded too (the builder counts them).

    Spec options: `axis`, `transpose` (swap rows/columns of every slice, ASUS), `zero_mask_outside_image` (CAMUS),
    plus the label options of `labels_to_layers`. Intensities are min-max scaled per volume unless already uint8.
    """
    axis = int(spec.get("axis", 0))
    if image.ndim == 2:
        image, labels = image[None], labels[None]
        axis = 0
    if labels.shape != image.shape[: labels.ndim] or labels.ndim != 3:
        raise SkipItem(f"mask size mismatch: mask {labels.shape} vs image {image.shape}")
    image = np.moveaxis(image, axis, 0)
    labels = np.moveaxis(labels, axis, 0)
    if image.dtype != np.uint8:
        image = rescale_to_uint8(image)
    indices = range(image.shape[0]) if frames is None else frames
    for index in indices:
        pixels, label_slice = image[index], labels[index]
        if spec.get("transpose"):
            pixels, label_slice = np.swapaxes(pixels, 0, 1), label_slice.T
        if spec.get("zero_mask_outside_image"):
            label_slice = np.where(pixels.reshape(label_slice.shape + (-1,)).max(-1) > 0, label_slice, 0)
        layers, unmapped = labels_to_layers(np.ascontiguousarray(label_slice).astype(np.int64), categories, spec)
        yield Frame(
            layers=layers,
            image=np.ascontiguousarray(pixels),
            frame_index=int(index),
            image_id=f"{item_id}#{int(index):05d}",
            pixel_spacing_mm=spacing,
            unmapped=unmapped,
        )
