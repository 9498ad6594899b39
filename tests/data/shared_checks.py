"""Independent checks of a build of the development sets in ../shared/us against their raw files.

The raw masks are read here with PIL/numpy only (not through the package's readers), so a reader bug shows up.
"""

import csv
import io
import os
from pathlib import Path

import numpy as np
from data_fixtures import read_rows
from PIL import Image
from scipy import ndimage

from ultrasam_hf.data import decode_instance_mask

# dataset -> (raw folder name, image glob, {category: function(raw mask array) -> bool mask})
DEV_SETS = {
    "bus-bra": ("bus-bra", "Images/*.png", {"lesion": lambda mask: mask > 0}),
    "hc18": (
        "hc18",
        "training_set/*_HC.png",
        {"fetal head": lambda mask: ndimage.binary_fill_holes(grey(mask) > 127)},
    ),
    "ccaui": ("common-carotid-artery", "US images/*.png", {"carotid artery": lambda mask: mask == 255}),
    "usgra": ("usgra", "**/images/*.png", {"nerve": lambda mask: mask == 1, "vessel": lambda mask: mask == 2}),
}


def grey(mask):
    return mask if mask.ndim == 2 else mask[..., 0]


def link_subset(raw: Path, target: Path, image_glob: str, count: int) -> Path:
    """A raw folder with the first `count` images (+ their masks and every non-image file), as symlinks."""
    images = sorted(raw.glob(image_glob))[:count]
    keep = {path for path in raw.rglob("*") if path.is_file() and path.suffix.lower() not in (".png",)}
    for image in images:
        keep.add(image)
        keep.update(
            path
            for path in raw.rglob(f"*{image.stem[4:] if image.name.startswith('bus_') else image.stem}*")
            if path.is_file()
        )
    for path in keep:
        link = target / path.relative_to(raw)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            os.symlink(path, link)
    return target


def check_build(slug: str, raw: Path, out: Path, manifest: dict) -> int:
    """Asserts accounting, pixel equality and group-disjoint splits; returns the number of rows checked."""
    _, image_glob, readers = DEV_SETS[slug]
    raw_items = len(list(Path(raw).glob(image_glob)))
    assert manifest["items"]["converted"] + manifest["items"]["skipped"] == raw_items == manifest["items"]["total"]
    dropped = {}
    for component in manifest["dropped_components"]["list"]:
        dropped[(component["image_id"], component["category"])] = (
            dropped.get((component["image_id"], component["category"]), 0) + 1
        )
    rows = read_rows(out, slug)
    assert len(rows) == manifest["items"]["converted"]
    min_area = manifest["dropped_components"]["min_area"]
    for row in rows:
        image = np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])))
        raw_image = np.asarray(Image.open(Path(raw) / row["source_files"][0]))
        np.testing.assert_array_equal(image, raw_image, err_msg=f"{slug}/{row['image_id']}: image pixels differ")
        raw_mask = np.asarray(Image.open(Path(raw) / row["source_files"][1]))
        for category, select in readers.items():
            expected = select(raw_mask)
            components, count = ndimage.label(expected, structure=np.ones((3, 3)))
            areas = np.bincount(components.ravel(), minlength=count + 1)
            tiny = [index for index in range(1, count + 1) if areas[index] < min_area]
            expected = expected & ~np.isin(components, tiny)
            assert len(tiny) == dropped.get((row["image_id"], category), 0), (
                f"{slug}/{row['image_id']}: dropped components not recorded"
            )
            masks = [decode_instance_mask(obj) for obj in row["objects"] if obj["category"] == category]
            decoded = np.logical_or.reduce(masks) if masks else np.zeros(expected.shape, dtype=bool)
            np.testing.assert_array_equal(
                decoded, expected, err_msg=f"{slug}/{row['image_id']}/{category}: mask differs"
            )
    splits_of_group = {}
    for row in rows:
        splits_of_group.setdefault(row["group_id"], set()).add(row["split"])
    leaked = {group: names for group, names in splits_of_group.items() if len(names) > 1}
    assert not leaked, f"{slug}: groups in several splits: {leaked}"
    return len(rows)


def bus_bra_tables(raw: Path) -> tuple:
    with open(raw / "bus_data.csv", newline="") as handle:
        cases = {row["ID"]: row["Case"] for row in csv.DictReader(handle)}
    with open(raw / "5-fold-cv.csv", newline="") as handle:
        folds = {row["ID"]: row["kFold"] for row in csv.DictReader(handle)}
    return cases, folds
