"""What the downstream tasks need besides the shards: BUS-BRA's official folds, and the preprocessing of an image with
its instance masks by the model's processor.

Rows come from built US-43d shards through the data layer (`ultrasam_hf.data.loading.decoded_rows`: `image` `HxWx3
uint8` as inference decodes it, each object with its bool `mask`, `bbox`, `category`, `class_label`). Build them once
(`docs/data_engine.md`):

    ultrasam data build bus-bra --raw ../shared/us/bus-bra --out us43d_build
    ultrasam data build usgra --raw ../shared/us/usgra --out us43d_build

BUS-BRA's official patient-level folds are release metadata the shards do not carry (they hold the card's single
train / validation / test split): `bus_bra_folds(raw_dir)` reads them from the raw `5-fold-cv.csv`.
"""

import csv
from pathlib import Path

import numpy as np

from ..data.cards import load_registry


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

    Returns `(pixel_values (C, size, size) float32, masks bool (N, size, size), (resized height, resized width))`,
    `C` = 1 when the three channels came out equal (a grey image in `litemedsam` mode: stored once; `as_rgb`
    `stack_pixels` restores them), else 3 (colour, or `sam` mode's per-channel mean/std)."""
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
    pixels = inputs["pixel_values"][0]
    if np.array_equal(pixels[0], pixels[1]) and np.array_equal(pixels[0], pixels[2]):
        pixels = pixels[:1]
    return pixels, resized, (new_h, new_w)


def stack_pixels(stored):
    """Stored `(C, S, S)` pixels (C = 1 or 3, see `preprocess`; any float dtype) as the model's `(B, 3, S, S)`."""
    import torch

    return torch.stack([pixels.float().expand(3, -1, -1) for pixels in stored]).contiguous()
