"""Readers by format family. Each module exposes `list_items(root, spec, categories) -> [RawItem]` (cheap: paths
only), `load_frames(root, item, spec, categories) -> iterator of Frame` (decodes; raises `SkipItem` for bad input) and
`OPTIONS`, the card spec options it implements. `READERS` wraps each in a `Reader` that adds the options common to all
readers (`base.COMMON_OPTIONS`): a card declaring any other option is rejected when the registry is loaded.

Reader modules import their format libraries (OpenCV, h5py, pycocotools, SimpleITK) on first use (`base.lazy_module`),
so the registry and its option checks work with the core install; only building needs the data extras."""

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace

from .base import COMMON_OPTIONS, Frame, RawItem, SkipItem, glob_relative

# reader name -> module of this package
READER_MODULES = {
    "image_mask_pairs": "pairs",
    "ellipse": "ellipse",
    "labelme": "labelme",
    "coco_polygons": "coco_polygons",
    "point_list_json": "point_list_json",
    "volume": "volume",
    "npy": "volume",
    "hdf5": "hdf5",
    "video_tracings": "video_tracings",
    "video_masks": "video_masks",
}


@dataclass(frozen=True)
class Reader:
    name: str
    family: ModuleType | SimpleNamespace

    @property
    def options(self) -> frozenset:
        return COMMON_OPTIONS | self.family.OPTIONS

    def list_items(self, root: Path, spec: dict, categories: dict) -> list:
        """The family's items, plus one skipped item per file that `exclude` names and no item uses."""
        items = self.family.list_items(root, spec, categories)
        used = {path for item in items for path in item.files}
        for path in glob_relative(root, spec.get("exclude")):
            if path not in used:
                items.append(RawItem(path, path, [path], skip_reason="excluded by the card's spec"))
        return items

    def load_frames(self, root: Path, item: RawItem, spec: dict, categories: dict):
        from .layers import finish_frame

        for frame in self.family.load_frames(root, item, spec, categories):
            yield finish_frame(frame, spec)


class _Readers(Mapping):
    """`READERS[name]` -> its `Reader`, the module imported on first use."""

    def __getitem__(self, name) -> Reader:
        module = importlib.import_module(f".{READER_MODULES[name]}", __name__)
        if name == "npy":  # NPY arrays: the volume module's own listing, loader and options
            module = SimpleNamespace(
                list_items=module.list_npy_items, load_frames=module.load_npy_frames, OPTIONS=module.NPY_OPTIONS
            )
        return Reader(name, module)

    def __contains__(self, name) -> bool:
        return name in READER_MODULES

    def __iter__(self):
        return iter(READER_MODULES)

    def __len__(self):
        return len(READER_MODULES)


READERS = _Readers()

__all__ = ["READERS", "READER_MODULES", "Frame", "RawItem", "Reader", "SkipItem"]
