"""What every reader hands the builder: raw items (listing) and 2-D frames with label layers (loading)."""

import fnmatch
import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Spec options every reader accepts: the builder reads the first three, the `Reader` wrapper (readers/__init__.py)
# applies the others to every reader's items and frames.
COMMON_OPTIONS = frozenset(
    {"keep_empty", "metadata", "pixel_spacing", "exclude", "keep_largest_component", "min_foreground_fraction"}
)


class SkipItem(Exception):
    """Bad or unusable raw input: the builder records `str(error)` as the skip reason and goes on."""


@dataclass
class RawItem:
    item_id: str  # unique within the dataset; also the image id of a still
    key: str  # what metadata tables (splits, class labels, groups) are looked up by
    files: list  # raw files (relative to the raw root) the item is made of
    payload: dict = field(default_factory=dict)  # reader-specific, picklable
    skip_reason: str | None = None  # known bad at listing time (e.g. missing mask file)


@dataclass
class Frame:
    layers: dict  # category key -> bool[H, W]
    image: np.ndarray | None = None  # uint8 [H, W] or [H, W, 3]
    image_bytes: bytes | None = None  # the source's own PNG/JPEG bytes, stored as is when set
    frame_index: int | None = None
    image_id: str | None = None  # defaults to the item id (stills)
    pixel_spacing_mm: list | None = None
    unmapped: dict = field(default_factory=dict)  # raw label value -> pixel count with no category (reported)


class lazy_module:
    """A module imported on first attribute access: readers name their format library (OpenCV, h5py, pycocotools)
    at the top as usual, and the registry can import every reader without the data extras installed."""

    def __init__(self, name: str):
        self._name, self._module = name, None

    def __getattr__(self, attribute):
        if self._module is None:
            import importlib

            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)


def as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def glob_relative(root: Path, patterns) -> list:
    """Files under `root` matching the glob pattern(s), as sorted POSIX paths relative to `root`."""
    found = set()
    for pattern in as_list(patterns):
        for path in glob.glob(str(Path(root) / pattern), recursive=True):
            if Path(path).is_file():  # normpath: "images/../masks/x.png" must be claimed as "masks/x.png"
                found.add(Path(os.path.normpath(path)).relative_to(os.path.normpath(root)).as_posix())
    return sorted(found)


def matches_any(relative_path: str, patterns) -> bool:
    return any(fnmatch.fnmatch(relative_path, pattern) for pattern in as_list(patterns))


def path_fields(relative_path: str, id_regex: str | None = None) -> dict:
    """Template fields of a raw path: {stem}, {name}, {suffix}, {dir}, {parent} and the named groups of `id_regex`."""
    path = Path(relative_path)
    name = path.name
    stem = name[: -len(".nii.gz")] if name.endswith(".nii.gz") else path.stem
    fields = {
        "stem": stem,
        "name": name,
        "suffix": path.suffix,
        "dir": path.parent.as_posix(),
        "parent": path.parent.name,
    }
    if id_regex:
        match = re.search(id_regex, relative_path)
        if not match:
            raise SkipItem(f"unknown layout: {relative_path} does not match id_regex {id_regex!r}")
        fields.update({name: value or "" for name, value in match.groupdict().items()})  # unmatched optional group: ""
    return fields


def fill_template(template: str, fields: dict) -> str:
    try:
        return template.format(**fields)
    except KeyError as error:
        raise ValueError(f"template {template!r} uses unknown field {error}; known: {sorted(fields)}") from None


def normalise(relative_path: str) -> str:
    """ "images/../masks/x.png" -> "masks/x.png" (templates may climb out of the image's folder)."""
    return Path(os.path.normpath(relative_path)).as_posix()
