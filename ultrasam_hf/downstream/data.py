"""Rows for the downstream tasks, in the US-43d row layout (`ultrasam_hf.data.schema`), with masks decoded.

A downstream row is a dict: `image` (`uint8` array, `(H, W)` or `(H, W, 3)`), `image_id`, `group_id` (patient /
scan) and `objects`, a list of `{"mask": bool[H, W], "bbox": [x0, y0, x1, y1], "category": str,
"class_label": str | None}`.

Two sources give the same rows:
- built shards (`ultrasam data build ... --out DIR`): `rows_from_shards(DIR, split)`;
- the raw public release, read directly (kept small on purpose: only what the downstream scripts need, so that
  they run before / without a shard build): `bus_bra_rows`, `usgra_rows`.
BUS-BRA's official patient-level folds are read from its `5-fold-cv.csv` (`bus_bra_folds`), since the shards carry
one train/validation/test split only.
"""

import csv
import math
from pathlib import Path

import numpy as np
from PIL import Image

USGRA_CATEGORIES = {1: "nerve", 2: "vessel"}


def _read_grey(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def _box(mask: np.ndarray) -> list[float]:
    rows, cols = np.nonzero(mask)
    return [float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1)]


def bus_bra_rows(raw_dir, image_ids=None) -> list[dict]:
    """BUS-BRA rows: one lesion per image (mask from `Masks/`), `class_label` = pathology from `bus_data.csv`."""
    raw_dir = Path(raw_dir)
    with open(raw_dir / "bus_data.csv", newline="") as handle:
        table = {row["ID"]: row for row in csv.DictReader(handle)}
    wanted = sorted(table) if image_ids is None else list(image_ids)
    rows = []
    for image_id in wanted:
        meta = table[image_id]
        mask = _read_grey(raw_dir / "Masks" / f"mask_{image_id.removeprefix('bus_')}.png") > 0
        obj = {"mask": mask, "bbox": _box(mask), "category": "lesion", "class_label": meta["Pathology"]}
        image = _read_grey(raw_dir / "Images" / f"{image_id}.png")
        rows.append({"image": image, "image_id": image_id, "group_id": meta["Case"], "objects": [obj]})
    return rows


def bus_bra_folds(raw_dir, folds_file: str = "5-fold-cv.csv") -> dict[int, dict[str, list[str]]]:
    """Official patient-level folds: `{fold: {"train": ids, "validation": ids, "test": ids}}`.

    In `5-fold-cv.csv`, column `valid_k` is 1 for training, 0 for validation and empty (NaN) for the test images of
    fold k (those with `kFold == k`)."""
    with open(Path(raw_dir) / folds_file, newline="") as handle:
        table = list(csv.DictReader(handle))
    folds = {}
    for column in (name for name in table[0] if name.startswith("valid_")):
        fold = int(column.split("_")[1])
        parts = {"train": [], "validation": [], "test": []}
        for row in table:
            value = row[column].strip()
            if value in ("", "NaN", "nan"):
                parts["test"].append(row["ID"])
            elif float(value) == 0:
                parts["validation"].append(row["ID"])
            else:
                parts["train"].append(row["ID"])
        folds[fold] = parts
    return folds


def usgra_rows(raw_dir, split: str = "train", min_area: int = 16, limit: int | None = None) -> list[dict]:
    """USGRA rows: palette masks (1 nerve, 2 vessel); instances = connected components of each label value
    (the UltraSam convention), components under `min_area` pixels dropped. `split`: `"train"` (`images/`) or
    `"test"` (`test/images`)."""
    from scipy import ndimage

    raw_dir = Path(raw_dir)
    base = raw_dir if split == "train" else raw_dir / "test"
    names = sorted(path.name for path in (base / "images").glob("*.png"))
    names = [name for name in names if (base / "masks" / name).is_file()][:limit]
    rows = []
    for name in names:
        labels = np.asarray(Image.open(base / "masks" / name))  # palette indices, read as such
        objects = []
        for value, category in USGRA_CATEGORIES.items():
            components, count = ndimage.label(labels == value)
            for index in range(1, count + 1):
                mask = components == index
                if mask.sum() >= min_area:
                    objects.append({"mask": mask, "bbox": _box(mask), "category": category, "class_label": None})
        image = _read_grey(base / "images" / name)
        rows.append({"image": image, "image_id": f"{split}/{Path(name).stem}", "group_id": Path(name).stem, "objects": objects})
    return rows


def rows_from_shards(shard_dir, split: str, dataset: str | None = None, limit: int | None = None) -> list[dict]:
    """Rows of built US-43d shards (`DIR/<split>/*.parquet`, or `DIR/<dataset>/<split>/...`), masks decoded."""
    from datasets import load_dataset
    from pycocotools import mask as mask_utils

    shard_dir = Path(shard_dir)
    candidates = [shard_dir / split, shard_dir / (dataset or "") / split]
    files = next((sorted(str(f) for f in folder.glob("*.parquet")) for folder in candidates if folder.is_dir()), [])
    if not files:
        raise FileNotFoundError(f"no {split} shards under {shard_dir}")
    table = load_dataset("parquet", data_files=files, split="train")
    if dataset is not None:
        table = table.filter(lambda row: row["dataset"] == dataset)
    rows = []
    for row in table.select(range(min(limit, len(table)))) if limit else table:
        objects = []
        for obj in row["objects"]:
            rle = {"counts": obj["mask"]["counts"].encode(), "size": list(obj["mask"]["size"])}
            objects.append(
                {
                    "mask": mask_utils.decode(rle).astype(bool),
                    "bbox": list(obj["bbox"]),
                    "category": obj["category"],
                    "class_label": obj["class_label"],
                }
            )
        image = np.asarray(row["image"].convert("L"))
        rows.append({"image": image, "image_id": row["image_id"], "group_id": row["group_id"], "objects": objects})
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Preprocessing shared by both tasks: the processor's recipe (resize the long side, normalise, pad bottom-right)
# applied to image, masks and boxes together, so that the three stay aligned.


def resize_geometry(height: int, width: int, size: int) -> tuple[float, int, int]:
    scale = size / max(height, width)
    return scale, int(height * scale + 0.5), int(width * scale + 0.5)


def prepare_image(image: np.ndarray, size: int, preprocessing: str = "litemedsam") -> tuple[np.ndarray, float]:
    """`(H, W[, 3]) uint8` -> `(3, size, size) float32` padded input, and the resize scale.

    `litemedsam`: min-max to [0, 1] per image; `sam`: ImageNet mean/std of 0-255 pixels."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    scale, new_h, new_w = resize_geometry(*image.shape[:2], size)
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR), dtype=np.float32)
    if preprocessing == "litemedsam":
        low, high = resized.min(), resized.max()
        resized = (resized - low) / max(high - low, 1e-8)
    else:
        resized = (resized - np.array([123.675, 116.28, 103.53])) / np.array([58.395, 57.12, 57.375])
    padded = np.zeros((size, size, 3), dtype=np.float32)
    padded[:new_h, :new_w] = resized
    return padded.transpose(2, 0, 1), scale


def prepare_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Boolean mask resized (nearest) and padded like `prepare_image`."""
    _, new_h, new_w = resize_geometry(*mask.shape, size)
    resized = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((new_w, new_h), Image.NEAREST)) > 127
    padded = np.zeros((size, size), dtype=bool)
    padded[:new_h, :new_w] = resized
    return padded


def jitter_box(box, rng: np.random.Generator, fraction: float = 0.05) -> list[float]:
    """The paper's training box: each corner moved uniformly by up to `fraction` of the box width / height."""
    x0, y0, x1, y1 = box
    dx, dy = fraction * (x1 - x0), fraction * (y1 - y0)
    shifts = rng.uniform(-1, 1, 4) * np.array([dx, dy, dx, dy])
    return [float(v) for v in np.array(box) + shifts]


def mean_std(values) -> tuple[float, float]:
    values = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values))
