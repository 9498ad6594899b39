"""Helpers shared by the data tests: specs built in code, small fixtures written in each raw format."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from ultrasam_hf.data.builder import build_dataset
from ultrasam_hf.data.cards import DatasetSpec

SHARED_US = Path(__file__).resolve().parents[3] / "shared" / "us"


def make_spec(reader, spec, categories, anatomy=None, split=None, slug="fixture", min_area=4, **fields) -> DatasetSpec:
    categories = {str(key): name for key, name in categories.items()}
    return DatasetSpec(
        slug=slug,
        pretty_name=slug,
        license="cc-by-4.0",
        index=None,
        in_us43d=False,
        redistribution="allowed",
        source="generated in tests",
        reader=reader,
        spec=spec,
        categories=categories,
        anatomy=anatomy or {name: "tumor" for name in categories.values()},
        split=split or {"rule": "group_hash", "seed": 0, "val": 0.0, "test": 0.0},
        min_area=min_area,
        **fields,
    )


def read_rows(out_dir: Path, slug="fixture") -> list:
    files = sorted((Path(out_dir) / slug).glob("*/*.parquet"))
    rows = [row for path in files for row in pq.read_table(path).to_pylist()]
    return sorted(rows, key=lambda row: row["image_id"])


def build(spec, raw, out, **options):
    manifest = build_dataset(spec, raw, out, **{"progress": False, **options})
    return manifest, read_rows(out, spec.slug)


def save(path: Path, array: np.ndarray, mode=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path) if mode is None else Image.fromarray(array).convert(mode).save(path)
    return path


def ultrasound_like(height=48, width=64, seed=0) -> np.ndarray:
    """Speckle-ish grey image: distinct per seed, so fixtures are not near-duplicates of each other."""
    rng = np.random.default_rng(seed)
    return (rng.gamma(2.0, 40.0, size=(height, width)).clip(0, 255)).astype(np.uint8)


def two_blobs(height=48, width=64) -> np.ndarray:
    """Label map: a 10x12 block of label 1 and a 6x6 block of label 2, plus a 1-pixel speck of label 1."""
    labels = np.zeros((height, width), dtype=np.uint8)
    labels[5:15, 5:17] = 1
    labels[30:36, 40:46] = 2
    labels[44, 2] = 1
    return labels
