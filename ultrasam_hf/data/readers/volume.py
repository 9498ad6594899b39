"""Volumes and sequences: NIfTI / MHA / MHD / NRRD (SimpleITK) and NPY arrays, sliced into annotated 2-D frames.

Card spec:
    volumes: glob(s) of image volumes (NPY arrays for the `npy` reader)
    mask: template of the label volume of a volume; fields {stem} (".nii.gz" stripped) {name} {dir} {parent}
    axis: slicing axis of the array (SimpleITK arrays are [z, y, x]: default 0), transpose, zero_mask_outside_image
    keep_empty: keep frames with empty masks (default false: counted as empty frames, not converted)
    image_channel: for images stored as [C, H, W] channel planes over 2-D label maps (PSFHS .mha: 3 equal planes,
          256x256 labels), keep plane `image_channel` (the official FH-PS-AOP converter keeps plane 0)
    header_spacing: false to leave pixel spacing unset when the header's spacing is a placeholder (PSFHS: 1 1 1 on
          images resized to 256x256); default true: the header's spacing is stored
The item is the volume; the frame id is "<volume id>#<index>" and its group (scan) defaults to the volume id.
"""

from pathlib import Path

import numpy as np

from .base import RawItem, SkipItem, fill_template, glob_relative, path_fields
from .sequences import frames_from_arrays


def list_items(root: Path, spec: dict, categories: dict) -> list:
    if not spec.get("volumes") or not spec.get("mask"):
        raise ValueError("volume/npy spec needs 'volumes' and 'mask'")
    items = []
    for volume_path in glob_relative(root, spec["volumes"]):
        fields = path_fields(volume_path, spec.get("id_regex"))
        mask_path = fill_template(spec["mask"], fields)
        item = RawItem(
            fill_template(spec.get("image_id", "{stem}"), fields),
            fill_template(spec.get("key", "{stem}"), fields),
            [volume_path, mask_path],
            {"volume": volume_path, "mask": mask_path},
        )
        if mask_path == volume_path:
            raise ValueError(f"mask template {spec['mask']!r} resolves to the volume itself ({volume_path})")
        if not (Path(root) / mask_path).is_file():
            item.files, item.skip_reason = [volume_path], f"missing mask: {mask_path}"
        items.append(item)
    return items


def read_sitk(path: Path) -> tuple:
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise SkipItem(f"unreadable volume: {path.name}: {str(error).strip().splitlines()[-1]}") from None
    spacing = image.GetSpacing()  # (x, y[, z]) in mm
    return sitk.GetArrayFromImage(image), [float(spacing[1]), float(spacing[0])]


def read_npy(path: Path) -> tuple:
    try:
        return np.load(path, allow_pickle=False), None
    except (OSError, ValueError) as error:
        raise SkipItem(f"unreadable array: {path.name}: {error}") from None


def load_frames(root: Path, item: RawItem, spec: dict, categories: dict, read=read_sitk):
    image, spacing = read(Path(root) / item.payload["volume"])
    labels, _ = read(Path(root) / item.payload["mask"])
    if spec.get("image_channel") is not None and image.ndim == labels.ndim + 1:
        channel = int(spec["image_channel"])
        if not 0 <= channel < image.shape[0]:
            raise SkipItem(f"image has no channel {channel}: {item.payload['volume']} is {image.shape}")
        image = image[channel]
    if spec.get("header_spacing") is False:  # a default 1.0 in the header is no measurement
        spacing = None
    yield from frames_from_arrays(image, labels, spec, categories, item.item_id, spacing)


def load_npy_frames(root: Path, item: RawItem, spec: dict, categories: dict):
    yield from load_frames(root, item, spec, categories, read=read_npy)
