"""Build one release through its dataset card and check the build against the raw files and the release's counts.

    PYTHONPATH=. .venv/bin/python scripts/verify_release.py CARD RAW_DIR [--out BUILD_DIR] [--duplicates drop-near]

CARD is a slug (`tg3k`) or a card path (`dataset_cards/tg3k/README.md`). Prints a Markdown verification table:
items in the release (the card's `ultrasam.release_counts`) against items converted + skipped, skips by reason,
rows / images / instances per split and per category, duplicates, wall time and images/s, and an independent
pixel check of every row: the raw masks are re-read here with PIL / SimpleITK / numpy (not through the package's
readers) and must equal the union of the row's instances exactly (pixel masks, plus components under `min_area`);
polygons are compared with their exact area (pixel centres inside, computed in float here): a pixel may disagree only
if its centre lies within sqrt(2) px of the outline (inclusive edge pixels plus vertex rounding). The row image must
equal the raw image's pixels. Exit status 1 when a check fails.
"""

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image
from scipy import ndimage

from ultrasam_hf.data import decode_instance_mask
from ultrasam_hf.data.builder import build_dataset
from ultrasam_hf.data.cards import default_cards_dir, load_registry, read_front_matter
from ultrasam_hf.data.schema import SPLITS

EIGHT = np.ones((3, 3), dtype=bool)
# A raster pixel may disagree with the exact polygon area only if its centre is this close to the outline: half a
# pixel diagonal (edge pixels drawn inclusively) plus half a pixel diagonal (vertices rounded to pixels).
POLYGON_TOLERANCE = np.sqrt(2)


def load_card(card: str):
    """-> (DatasetSpec, the card's `ultrasam.release_counts` or {})."""
    path = Path(card)
    if path.is_dir():
        path = path / "README.md"
    if not path.is_file():
        path = default_cards_dir() / card / "README.md"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry = load_registry(path.parent.parent, strict=False)
    slug = path.parent.name
    if slug not in registry:
        raise SystemExit(f"no valid dataset card {slug!r} in {path.parent.parent}")
    return registry[slug], (read_front_matter(path).get("ultrasam") or {}).get("release_counts") or {}


def read_rows(build_dir: Path) -> list:
    rows = [row for shard in sorted(build_dir.glob("*/*.parquet")) for row in pq.read_table(shard).to_pylist()]
    return sorted(rows, key=lambda row: row["image_id"])


def decoded_image(row) -> np.ndarray:
    with Image.open(io.BytesIO(row["image"]["bytes"])) as image:
        return np.asarray(image)


def instance_unions(row, height, width) -> dict:
    unions = {}
    for obj in row["objects"]:
        mask = decode_instance_mask(obj)
        unions[obj["category"]] = unions.get(obj["category"], np.zeros((height, width), bool)) | mask
    return unions


def without_small(layer: np.ndarray, min_area: int) -> np.ndarray:
    components, count = ndimage.label(layer, structure=EIGHT)
    if count == 0:
        return layer
    areas = np.bincount(components.ravel())
    keep = areas >= min_area
    keep[0] = False
    return keep[components]


# --- independent references, one per reader family: raw files -> (image pixels, {category: bool mask}) -----------


def raw_image(path: Path) -> np.ndarray:
    """8-bit grey or RGB pixels of a raw image file, by its mode."""
    with Image.open(path) as image:
        if image.mode in ("1", "LA"):
            return np.asarray(image.convert("L"))
        if image.mode in ("P", "PA", "RGBA", "CMYK", "YCbCr"):
            return np.asarray(image.convert("RGB"))
        return np.asarray(image)


def raw_label_image(path: Path, colour_coded: bool) -> np.ndarray:
    with Image.open(path) as image:
        if colour_coded:
            return np.asarray(image.convert("RGB")).astype(np.int32)
        if image.mode == "1":
            return np.asarray(image.convert("L")).astype(np.int32)  # 1-bit: 0/255
        if image.mode in ("RGB", "RGBA", "LA"):
            return np.asarray(image.convert("L")).astype(np.int32)
        return np.asarray(image).astype(np.int32)


def pairs_reference(raw: Path, row, spec) -> tuple:
    files = row["source_files"]
    pixels = raw_image(raw / files[0])
    height, width = pixels.shape[:2]
    colour_coded = any("," in key for key in spec.categories)
    labels = None
    for mask_path in files[1:]:
        mask = raw_label_image(raw / mask_path, colour_coded)
        if mask.shape[:2] != (height, width):
            mode_mask = Image.fromarray(mask.astype(np.uint8) if colour_coded else mask)
            mask = np.asarray(mode_mask.resize((width, height), Image.NEAREST)).astype(np.int32)
        labels = mask if labels is None else np.maximum(labels, mask)
    options = spec.spec
    threshold = options.get("threshold", 127 if spec.reader == "ellipse" else None)
    if threshold is not None and not colour_coded:
        labels = np.where(labels > float(threshold), 255, 0)
    layers = {}
    for key, name in spec.categories.items():
        if colour_coded:
            layer = np.all(labels == np.array([int(v) for v in key.split(",")]), axis=-1)
        else:
            layer = labels == int(key)
        if options.get("fill_holes") or spec.reader == "ellipse":
            layer = ndimage.binary_fill_holes(layer)
        layers[name] = layers.get(name, np.zeros_like(layer)) | layer
    return pixels, layers


def volume_reference(raw: Path, row, spec) -> tuple:
    import SimpleITK as sitk

    image = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / row["source_files"][0])))
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / row["source_files"][1])))
    if spec.spec.get("image_channel") is not None and image.ndim == labels.ndim + 1:
        image = image[int(spec.spec["image_channel"])]
    if labels.ndim == 3:
        image, labels = image[row["frame_index"]], labels[row["frame_index"]]
    layers = {}
    for key, name in spec.categories.items():
        layers[name] = layers.get(name, np.zeros(labels.shape, bool)) | (labels == int(key))
    return image, layers


def inside(polygon: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Even-odd test of points (pixel centres) against one polygon [[x, y], ...], in float: the exact geometry."""
    result = np.zeros(xs.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0)):
        crosses = (y0 > ys) != (y1 > ys)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (ys - y0) * (x1 - x0) / (y1 - y0)
        result ^= crosses & (xs < x_at)
    return result


def outline_distance(polygons: list, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Distance of each point to the nearest edge of any of the polygons."""
    best = np.full(xs.shape, np.inf)
    for polygon in polygons:
        for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0)):
            dx, dy = x1 - x0, y1 - y0
            t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)
            best = np.minimum(best, np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy)))
    return best


def labelme_reference(raw: Path, row, spec) -> tuple:
    """Exact polygon areas (pixel centres inside, even-odd per polygon, union per category) and the polygons."""
    json_path, image_path = row["source_files"][0], row["source_files"][1]
    encodings = spec.spec.get("encoding", "utf-8")
    for encoding in encodings if isinstance(encodings, list) else [encodings]:
        try:
            document = json.loads((raw / json_path).read_bytes().decode(encoding))
            break
        except UnicodeDecodeError:
            continue
    pixels = raw_image(raw / image_path)
    height, width = pixels.shape[:2]
    layers, polygons = {}, {}
    for shape in document["shapes"]:
        name = spec.categories.get(str(shape["label"]))
        if name is None or shape.get("shape_type", "polygon") != "polygon":
            continue
        polygon = np.asarray(shape["points"], dtype=np.float64)
        polygons.setdefault(name, []).append(polygon)
        layer = layers.setdefault(name, np.zeros((height, width), bool))
        (x0, y0), (x1, y1) = np.floor(polygon.min(0)).astype(int), np.ceil(polygon.max(0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)  # only the polygon's box can hold its pixel centres
        layer[y0:y1, x0:x1] |= inside(polygon, xs, ys)
    return pixels, layers, polygons


REFERENCES = {
    "image_mask_pairs": pairs_reference,
    "ellipse": pairs_reference,
    "volume": volume_reference,
    "labelme": labelme_reference,
}


def check_rows(raw: Path, rows: list, spec) -> dict:
    """Pixel checks of every row -> counts of rows checked / failing and the largest disagreement."""
    reference = REFERENCES.get(spec.reader)
    result = Counter()
    worst = {"pixels": 0, "row": None}
    if reference is None:
        return {"note": f"no independent reference for reader {spec.reader!r}"}
    for row in rows:
        pixels, layers, *polygons = reference(raw, row, spec)
        result["rows checked"] += 1
        stored = decoded_image(row)
        if stored.shape != pixels.shape or not np.array_equal(stored, pixels):
            result["image pixels differ"] += 1
        unions = instance_unions(row, row["height"], row["width"])
        for name in set(layers) | set(unions):
            got = unions.get(name, np.zeros((row["height"], row["width"]), bool))
            want = without_small(layers.get(name, np.zeros_like(got)), spec.min_area)
            if polygons:  # a raster of a polygon may differ from its exact area only along the outline
                ys, xs = np.nonzero(got ^ want)
                distance = outline_distance(polygons[0].get(name, []), xs.astype(float), ys.astype(float))
                result["outline pixels differing (allowed)"] += len(xs)
                result["of them farther than 1 px from the outline"] += int((distance > 1.0).sum())
                result["max distance to the outline, px"] = max(
                    result["max distance to the outline, px"], float(distance.max(initial=0.0))
                )
                bad = np.zeros_like(got)
                bad[ys[distance > POLYGON_TOLERANCE], xs[distance > POLYGON_TOLERANCE]] = True
            else:
                bad = got ^ want
            if bad.any():
                result["category masks differing"] += 1
                if int(bad.sum()) > worst["pixels"]:
                    worst = {"pixels": int(bad.sum()), "row": f"{row['image_id']} / {name}"}
            result["category masks checked"] += 1
    return {**dict(result), "worst": worst}


# --- counts ---------------------------------------------------------------------------------------------------------


def count_rows(rows: list) -> dict:
    images, instances, labels = Counter(), Counter(), Counter()
    for row in rows:
        for name in {obj["category"] for obj in row["objects"]}:
            images[(row["split"], name)] += 1
        for obj in row["objects"]:
            instances[(row["split"], obj["category"])] += 1
            labels[obj["class_label"]] += 1
    return {"images": images, "instances": instances, "class_labels": labels}


def table(header: list, lines: list) -> list:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(str(cell) for cell in line) + " |" for line in lines]


def report(
    spec,
    raw: Path,
    manifest: dict,
    split_items: Counter,
    rows: list,
    checks: dict,
    release: dict,
    seconds: float,
    options: dict,
) -> tuple:
    """-> (Markdown lines, list of failed checks)."""
    failures = []
    items = manifest["items"]
    expected_items = release.get("items")
    if items["converted"] + items["skipped"] != items["total"]:
        failures.append("converted + skipped != total")
    if expected_items is not None and items["total"] != expected_items:
        failures.append(f"items in the build {items['total']} != items in the release {expected_items}")
    if checks.get("image pixels differ") or checks.get("category masks differing"):
        failures.append("pixel check")
    lines = [f"### {spec.slug}", ""]
    card = Path(spec.card_path).relative_to(Path(spec.card_path).parents[2])
    lines += [f"Raw folder `{raw}`, card `{card}`, options {json.dumps(options)}.", ""]
    paper = release.get("paper")
    lines += table(
        ["", "release", "this build"],
        [
            [
                "items (files / annotated images)",
                expected_items if expected_items is not None else "not stated",
                items["total"],
            ],
            [
                "converted + skipped",
                "",
                f"{items['converted']} + {items['skipped']} = {items['converted'] + items['skipped']}",
            ],
            ["count in the paper / card", paper or "not stated", ""],
            [
                "skips by reason",
                "",
                ", ".join(f"{k}: {v}" for k, v in sorted(manifest["skip_reasons"].items())) or "none",
            ],
            ["rows (2-D images) kept", "", sum(manifest["rows"].values())],
            ["wall time, images/s", "", f"{seconds:.1f} s, {items['total'] / max(seconds, 1e-9):.1f} items/s"],
            [
                "duplicates (exact / near / dropped / cross-split)",
                "",
                "{exact} / {near} / {dropped} / {cross_split}".format(**manifest["duplicates"]),
            ],
            ["components under min_area dropped", "", manifest["dropped_components"]["count"]],
            [
                "unmapped labels",
                "",
                json.dumps(manifest["unmapped_labels"]) if manifest["unmapped_labels"] else "none",
            ],
        ],
    )
    counts = count_rows(rows)
    expected_splits = release.get("splits") or {}
    for split, expected in expected_splits.items():
        if split_items.get(split, 0) != expected:
            failures.append(f"{split}: {split_items.get(split, 0)} items, release {expected}")
    lines += [
        "",
        "Per split (items: raw items assigned to the split; rows: images kept; groups: patients / scans):",
        "",
    ]
    lines += table(
        ["split", "release items", "items", "rows", "groups"],
        [
            [
                split,
                expected_splits.get(split, ""),
                split_items.get(split, 0),
                manifest["rows"].get(split, 0),
                manifest["groups"].get(split, 0),
            ]
            for split in SPLITS
        ],
    )
    names = sorted({name for _, name in counts["images"]} | set(release.get("images_per_class") or {}))
    expected_classes = release.get("images_per_class") or {}
    lines += ["", "Per category (images containing it / instances), per split:", ""]
    body = []
    for name in names:
        per_split = [f"{counts['images'][(split, name)]} / {counts['instances'][(split, name)]}" for split in SPLITS]
        total_images = sum(counts["images"][(split, name)] for split in SPLITS)
        total_instances = sum(counts["instances"][(split, name)] for split in SPLITS)
        expected = expected_classes.get(name, "")
        if name in expected_classes and manifest["duplicates"]["dropped"]:  # the policy removed rows on purpose
            expected = f"{expected} (not compared: duplicates dropped)"
        body.append([name, expected, *per_split, f"{total_images} / {total_instances}"])
        if (
            name in expected_classes
            and not manifest["duplicates"]["dropped"]
            and expected_classes[name] != total_images
        ):
            failures.append(f"{name}: {total_images} images, release {expected_classes[name]}")
    lines += table(["category", "release images", *SPLITS, "all"], body)
    if any(label is not None for label in counts["class_labels"]):
        lines += [
            "",
            "Class labels (instances): "
            + ", ".join(f"{k}: {v}" for k, v in sorted(counts["class_labels"].items(), key=str)),
        ]
    worst = checks.get("worst") or {}
    kind = (
        f"exact polygon areas, disagreement only within {POLYGON_TOLERANCE:.2f} px of the outline"
        if spec.reader == "labelme"
        else "pixel-exact"
    )
    lines += [
        "",
        f"Pixel check ({kind}): "
        + ", ".join(f"{k}: {round(v, 2) if isinstance(v, float) else v}" for k, v in checks.items() if k != "worst")
        + (f"; worst {worst['row']}: {worst['pixels']} px" if worst.get("row") else ""),
    ]
    lines += ["", "Result: " + ("**all checks pass**" if not failures else "**FAILED**: " + "; ".join(failures)), ""]
    return lines, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("card", help="dataset slug or card path")
    parser.add_argument("raw_dir", help="the release's raw folder")
    parser.add_argument("--out", help="build folder (the dataset lands in OUT/<slug>/); default: a temporary folder")
    parser.add_argument("--duplicates", choices=("keep", "drop-exact", "drop-near"), default="keep")
    parser.add_argument("--near-threshold", type=int, default=4)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument(
        "--fresh", action="store_true", help="delete OUT/<slug>/ first, so the build is timed from scratch"
    )
    args = parser.parse_args()
    spec, release = load_card(args.card)
    raw = Path(args.raw_dir)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix=f"verify-{spec.slug}-"))
    if args.fresh and (out / spec.slug).is_dir():
        shutil.rmtree(out / spec.slug)
    options = {"duplicates": args.duplicates, "near_threshold": args.near_threshold, "num_workers": args.num_workers}
    start = time.perf_counter()
    manifest = build_dataset(spec, raw, out, progress=False, **options)
    seconds = time.perf_counter() - start
    rows = read_rows(out / spec.slug)
    checks = check_rows(raw, rows, spec)
    split_items = Counter(
        item["split"]
        for sidecar in (out / spec.slug).glob("*/*.parquet.json")
        for item in json.loads(sidecar.read_text())["items"]
    )
    lines, failures = report(spec, raw, manifest, split_items, rows, checks, release, seconds, options)
    print("\n".join(lines))
    if not args.out:
        shutil.rmtree(out)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
