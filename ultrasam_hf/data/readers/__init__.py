"""Readers by format family. Each module exposes `list_items(root, spec, categories) -> [RawItem]` (cheap: paths
only), `load_frames(root, item, spec, categories) -> iterator of Frame` (decodes; raises `SkipItem` for bad input) and
`OPTIONS`, the card spec options it implements. `READERS` wraps each in a `Reader` that adds the options common to all
readers (`base.COMMON_OPTIONS`): a card declaring any other option is rejected when the registry is loaded."""

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace

from . import (
    coco_polygons,
    ellipse,
    hdf5,
    labelme,
    pairs,
    point_list_json,
    video_masks,
    video_tracings,
    volume,
)
from .base import COMMON_OPTIONS, Frame, RawItem, SkipItem, glob_relative
from .layers import finish_frame


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
        for frame in self.family.load_frames(root, item, spec, categories):
            yield finish_frame(frame, spec)


NPY = SimpleNamespace(list_items=volume.list_npy_items, load_frames=volume.load_npy_frames, OPTIONS=volume.NPY_OPTIONS)
FAMILIES = {
    "image_mask_pairs": pairs,
    "ellipse": ellipse,
    "labelme": labelme,
    "coco_polygons": coco_polygons,
    "point_list_json": point_list_json,
    "volume": volume,
    "npy": NPY,
    "hdf5": hdf5,
    "video_tracings": video_tracings,
    "video_masks": video_masks,
}
READERS = {name: Reader(name, family) for name, family in FAMILIES.items()}

__all__ = ["READERS", "Frame", "RawItem", "Reader", "SkipItem"]
