"""HDF5 frame stacks (Stanford Thyroid Cineclip style): one item per patient/clip group of frames.

Card spec:
    files: glob(s) of .h5/.hdf5 files
    image_key, mask_key: datasets of shape [N, H, W] (frames on `axis`, default 0)
    the slicing options of `sequences.frames_from_arrays` (threshold, fill_holes, flip, ...)
    group_key: optional dataset of length N naming each frame's patient/clip (items are split on it)
The frame id is "<group or file stem>#<frame index>".
"""

from pathlib import Path

import numpy as np

from .base import RawItem, SkipItem, glob_relative, lazy_module, path_fields
from .sequences import SLICING_OPTIONS, frames_from_arrays

h5py = lazy_module("h5py")  # the data extra: imported on first use


OPTIONS = frozenset({"files", "image_key", "mask_key", "group_key"}) | SLICING_OPTIONS


def list_items(root: Path, spec: dict, categories: dict) -> list:
    if not spec.get("files") or not spec.get("image_key") or not spec.get("mask_key"):
        raise ValueError("hdf5 spec needs 'files', 'image_key' and 'mask_key'")
    items = []
    for file_path in glob_relative(root, spec["files"]):
        stem = path_fields(file_path)["stem"]
        try:
            with h5py.File(Path(root) / file_path, "r") as handle:
                count = handle[spec["image_key"]].shape[int(spec.get("axis", 0))]
                groups = (
                    [decode(value) for value in handle[spec["group_key"]][:]]
                    if spec.get("group_key")
                    else [stem] * count
                )
        except (OSError, KeyError) as error:
            items.append(RawItem(stem, stem, [file_path], skip_reason=f"unreadable hdf5: {error}"))
            continue
        frames_by_group = {}
        for index, group in enumerate(groups):
            frames_by_group.setdefault(group, []).append(index)
        for group, frames in sorted(frames_by_group.items()):
            items.append(RawItem(group, group, [file_path], {"file": file_path, "frames": frames}))
    return items


def decode(value) -> str:
    value = value.item() if isinstance(value, np.ndarray) else value
    return value.decode("utf-8").strip() if isinstance(value, bytes) else str(value).strip()


def load_frames(root: Path, item: RawItem, spec: dict, categories: dict):
    axis = int(spec.get("axis", 0))
    frames = item.payload["frames"]
    try:
        with h5py.File(Path(root) / item.payload["file"], "r") as handle:
            image = (
                np.take(handle[spec["image_key"]], frames, axis=axis) if axis else handle[spec["image_key"]][frames]
            )
            labels = np.take(handle[spec["mask_key"]], frames, axis=axis) if axis else handle[spec["mask_key"]][frames]
    except (OSError, KeyError) as error:
        raise SkipItem(f"unreadable hdf5: {error}") from None
    for position, frame in enumerate(frames_from_arrays(image, labels, spec, categories, item.item_id)):
        frame.frame_index = frames[position]
        frame.image_id = f"{item.item_id}#{frames[position]:05d}"
        yield frame
