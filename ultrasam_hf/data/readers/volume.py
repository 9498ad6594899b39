"""Volumes and sequences: NIfTI / MHA / MHD / NRRD (SimpleITK) and NPY arrays, sliced into annotated 2-D frames.

Card spec:
    volumes: glob(s) of image volumes (NPY arrays for the `npy` reader)
    mask: template of the label volume of a volume; fields {stem} (".nii.gz" stripped) {name} {dir} {parent} and the
          named groups of `id_regex`
    id_regex, image_id, key: as for image_mask_pairs (defaults "{stem}")
    the slicing options of `sequences.frames_from_arrays` (axis, transpose, flip, zero_mask_outside_image,
    fov_heuristic, label_channels, threshold, background, fill_holes)
`npy` reader only, for releases that pickle a dict per image (FASS: {"image": array, "structures": {name: mask}}):
    image_key: the dict entry holding the image; mask_dict_key: the entry holding {category key: binary mask}
    (no `mask` template then: image and masks come from the one file). Such files are read by `npy_dict`, which
    refuses any pickled object other than arrays, dicts, lists and strings (no arbitrary code is unpickled).
    image_channel: for images stored as [C, H, W] channel planes over 2-D label maps (PSFHS .mha: 3 equal planes,
          256x256 labels), keep plane `image_channel` (the official FH-PS-AOP converter keeps plane 0)
    header_spacing: false to leave pixel spacing unset when the header's spacing is a placeholder (PSFHS: 1 1 1 on
          images resized to 256x256); default true: the header's spacing is stored
The item is the volume; the frame id is "<volume id>#<index>" and its group (scan) defaults to the volume id.
"""

from pathlib import Path

import numpy as np

from .base import (
    Frame,
    RawItem,
    SkipItem,
    fill_template,
    glob_relative,
    normalise,
    path_fields,
)
from .npy_dict import read_npy_dict
from .sequences import SLICING_OPTIONS, frames_from_arrays

OPTIONS = (
    frozenset({"volumes", "mask", "id_regex", "image_id", "key", "image_channel", "header_spacing"}) | SLICING_OPTIONS
)
NPY_OPTIONS = OPTIONS | {"image_key", "mask_dict_key"}


def list_items(root: Path, spec: dict, categories: dict) -> list:
    if not spec.get("volumes") or not spec.get("mask"):
        raise ValueError("volume/npy spec needs 'volumes' and 'mask' (npy: or 'mask_dict_key' and 'image_key')")
    items = []
    for volume_path in glob_relative(root, spec["volumes"]):
        try:
            fields = path_fields(volume_path, spec.get("id_regex"))
        except SkipItem as error:
            items.append(RawItem(volume_path, volume_path, [volume_path], skip_reason=str(error)))
            continue
        mask_path = normalise(fill_template(spec["mask"], fields))
        if mask_path == volume_path:
            raise ValueError(f"mask template {spec['mask']!r} resolves to the volume itself ({volume_path})")
        item = RawItem(
            fill_template(spec.get("image_id", "{stem}"), fields),
            fill_template(spec.get("key", "{stem}"), fields),
            [volume_path, mask_path],
            {"volume": volume_path, "mask": mask_path},
        )
        if not (Path(root) / mask_path).is_file():
            item.files, item.skip_reason = [volume_path], f"missing mask: {mask_path}"
        items.append(item)
    mask_files = {item.payload["mask"] for item in items if item.payload}
    return [item for item in items if item.files[0] not in mask_files]  # a label volume matched by `volumes`


def list_npy_items(root: Path, spec: dict, categories: dict) -> list:
    if not spec.get("mask_dict_key"):
        return list_items(root, spec, categories)
    if not spec.get("volumes") or not spec.get("image_key"):
        raise ValueError("npy spec with 'mask_dict_key' needs 'volumes' and 'image_key'")
    items = []
    for path in glob_relative(root, spec["volumes"]):
        fields = path_fields(path, spec.get("id_regex"))
        item_id, key = (fill_template(spec.get(name, "{stem}"), fields) for name in ("image_id", "key"))
        items.append(RawItem(item_id, key, [path], {"dict": path}))
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
    if "dict" not in item.payload:
        yield from load_frames(root, item, spec, categories, read=read_npy)
        return
    path = item.payload["dict"]
    document = read_npy_dict(Path(root) / path)
    image, structures = document.get(spec["image_key"]), document.get(spec["mask_dict_key"])
    if not isinstance(image, np.ndarray) or not isinstance(structures, dict):
        raise SkipItem(f"unknown layout: {path} has no array {spec['image_key']!r} and dict {spec['mask_dict_key']!r}")
    if image.dtype != np.uint8:  # [0, 1] floats as the converters read them, else clipped to 0-255
        image = np.round(image * 255.0 if image.max() <= 1 else image).clip(0, 255).astype(np.uint8)
    layers, unmapped = {}, {}
    for key, mask in structures.items():
        mask = np.asarray(mask)
        if mask.shape != image.shape[:2]:
            raise SkipItem(f"mask size mismatch: {path}: {key!r} is {mask.shape}, image {image.shape[:2]}")
        if str(key) not in categories:
            unmapped[str(key)] = int(np.count_nonzero(mask))
        elif mask.any():
            layers[str(key)] = mask != 0
    yield Frame(layers=layers, image=np.ascontiguousarray(image), unmapped=unmapped)
