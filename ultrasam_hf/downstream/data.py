"""Rows for the downstream tasks, read from built US-43d shards, and their preprocessing by the model's processor.

Build the shards once with the data layer (`docs/data_engine.md`):

    ultrasam data build bus-bra --raw ../shared/us/bus-bra --out us43d_build
    ultrasam data build usgra --raw ../shared/us/usgra --out us43d_build

A downstream row is a dict: `image` (grey `uint8` array `(H, W)`), `image_id`, `group_id` (patient / scan) and
`objects`, a list of `{"mask": bool[H, W], "bbox": [x0, y0, x1, y1], "category": str, "class_label": str | None}`:
the US-43d row (`ultrasam_hf.data.schema`) read with `load_us43d`, masks decoded with `decode_instance_mask`.

BUS-BRA's official patient-level folds are release metadata the shards do not carry (they hold the card's single
train / validation / test split): `bus_bra_folds(raw_dir)` reads them from the raw `5-fold-cv.csv`.
"""

import csv
from pathlib import Path

import numpy as np

from ..data import decode_instance_mask, load_registry, load_us43d
from ..data.schema import SPLITS


def load_rows(shards, dataset: str, splits=SPLITS, image_ids=None, limit: int | None = None) -> list[dict]:
    """Rows of `dataset` in a build folder (`ultrasam data build --out`), splits in the order given.

    `image_ids`: keep only these images (any split); `limit`: the first `limit` rows (after the id filter). Only the
    kept rows are decoded."""
    built = load_us43d(shards, datasets=[dataset])
    wanted = None if image_ids is None else set(image_ids)
    rows = []
    for split in [name for name in splits if name in built]:
        table = built[split]
        keep = [i for i, image_id in enumerate(table["image_id"]) if wanted is None or image_id in wanted]
        if limit is not None:
            keep = keep[: max(limit - len(rows), 0)]
        for row in table.select(keep):
            objects = [
                {"mask": decode_instance_mask(obj), "bbox": list(obj["bbox"]), "category": obj["category"], "class_label": obj["class_label"]}
                for obj in row["objects"]
            ]
            image = np.asarray(row["image"].convert("L"))
            rows.append({"image": image, "image_id": row["image_id"], "group_id": row["group_id"], "objects": objects})
    return rows


def bus_bra_folds(raw_dir, folds_file: str | None = None) -> dict[int, dict[str, list[str]]]:
    """Official patient-level folds: `{fold: {"train": ids, "validation": ids, "test": ids}}`.

    File and id column come from the `bus-bra` card's split spec (`5-fold-cv.csv`, `ID`). There, column `valid_k` is
    1 for training, 0 for validation and empty (NaN) for the test images of fold k (those with `kFold == k`)."""
    spec = load_registry()["bus-bra"].split
    id_column = spec["id_column"]
    with open(Path(raw_dir) / (folds_file or spec["file"]), newline="", encoding="utf-8-sig") as handle:
        table = list(csv.DictReader(handle))
    folds = {}
    for column in (name for name in table[0] if name.startswith("valid_")):
        parts = {"train": [], "validation": [], "test": []}
        for row in table:
            value = row[column].strip()
            part = "test" if value.lower() in ("", "nan") else "validation" if float(value) == 0 else "train"
            parts[part].append(row[id_column].strip())
        folds[int(column.split("_")[1])] = parts
    return folds


# ---------------------------------------------------------------------------------------------------------------
# Preprocessing: the model's own image processor (`UltraSamImageProcessor.from_model_config(config)`), with the
# instance masks passed as its segmentation maps so that image and masks share one resize + pad geometry.


def _instance_layers(masks: list[np.ndarray], shape) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """Pack boolean masks into `uint8` id maps (instance k -> value k + 1 of some layer) without overlaps."""
    layers, where = [], []
    for mask in masks:
        for index, layer in enumerate(layers):
            if layer.max() < 255 and not layer[mask].any():
                break
        else:
            index = len(layers)
            layers.append(np.zeros(shape, np.uint8))
        value = int(layers[index].max()) + 1
        layers[index][mask] = value
        where.append((index, value))
    return layers, where


def preprocess(image_processor, image: np.ndarray, masks: list[np.ndarray], size: int):
    """One image and its instance masks through `image_processor` at input size `size` (long side resized to
    `size`, then padded bottom-right to `size x size`; masks resized nearest with the same geometry).

    Returns `(pixel_values (3, size, size) float32, masks bool (N, size, size), (resized height, resized width))`."""
    geometry = {
        "size": {"longest_edge": size},
        "pad_size": {"height": size, "width": size},
        "mask_size": {"longest_edge": size},
        "mask_pad_size": {"height": size, "width": size},
    }
    layers, where = _instance_layers(masks, image.shape[:2])
    inputs = image_processor(
        images=[image] * max(len(layers), 1), segmentation_maps=layers or None, return_tensors="np", **geometry
    )
    resized = np.zeros((0, size, size), dtype=bool)
    if where:
        resized = np.stack([inputs["labels"][index] == value for index, value in where])
    new_h, new_w = (int(v) for v in inputs["reshaped_input_sizes"][0])
    return inputs["pixel_values"][0], resized, (new_h, new_w)
