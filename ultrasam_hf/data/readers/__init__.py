"""Readers by format family. Each exposes `list_items(root, spec, categories) -> [RawItem]` (cheap: paths only) and
`load_frames(root, item, spec, categories) -> iterator of Frame` (decodes; raises `SkipItem` for bad input)."""

import importlib
from collections.abc import Mapping
from types import SimpleNamespace

from .base import Frame, RawItem, SkipItem


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
}


class _Readers(Mapping):
    """`READERS[name]` -> the reader, imported on first use: readers need the data extras (OpenCV, h5py, pycocotools,
    SimpleITK), while the registry (`load_registry`) only needs their names."""

    def __getitem__(self, name):
        module = importlib.import_module(f".{READER_MODULES[name]}", __name__)
        if name == "npy":  # NPY arrays: the volume reader's listing, its own loader
            return SimpleNamespace(list_items=module.list_items, load_frames=module.load_npy_frames)
        return module

    def __contains__(self, name) -> bool:  # without importing
        return name in READER_MODULES

    def __iter__(self):
        return iter(READER_MODULES)

    def __len__(self):
        return len(READER_MODULES)


READERS = _Readers()

__all__ = ["READERS", "READER_MODULES", "Frame", "RawItem", "SkipItem"]
