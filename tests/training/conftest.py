"""Small generated US-43d shards (the documented row schema) for the training tests."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ultrasam_hf.data.instances import encode_instance_map

REPO = Path(__file__).resolve().parents[2]


def _encode(mask):
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"counts": rle["counts"].decode("ascii"), "size": [int(mask.shape[0]), int(mask.shape[1])]}


def make_row(dataset: str, index: int, split: str, rng, height=48, width=64, instances=2) -> dict:
    """A speckled grey image with `instances` bright ellipses, each an instance."""
    yy, xx = np.mgrid[:height, :width]
    image = rng.normal(60, 20, (height, width))
    objects = []
    for k in range(instances):
        cy, cx = rng.uniform(10, height - 10), rng.uniform(10, width - 10)
        ry, rx = rng.uniform(4, 9), rng.uniform(4, 12)
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        for other in objects:
            mask &= ~other["_mask"]
        if mask.sum() < 8:
            continue
        image[mask] += 120
        rows, cols = np.nonzero(mask)
        objects.append(
            {
                "_mask": mask,
                "mask": _encode(mask),
                "bbox": [float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1)],
                "area": int(mask.sum()),
                "category": "blob",
                "anatomy": "breast lesion",
                "class_label": None,
            }
        )
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    ids = np.zeros((height, width), dtype=np.int32)
    for k, obj in enumerate(objects, start=1):
        ids[obj.pop("_mask")] = k
    return {
        "image": {"bytes": buffer.getvalue(), "path": None},
        "dataset": dataset,
        "image_id": f"{dataset}_{index:04d}",
        "group_id": f"{dataset}_{index:04d}",
        "frame_index": None,
        "split": split,
        "height": height,
        "width": width,
        "pixel_spacing_mm": None,
        "license": "cc-by-4.0",
        "source_files": [f"{index}.png"],
        "objects": objects,
        "instance_map": {"bytes": encode_instance_map(ids), "path": None},
    }


def write_shards(root: Path, counts: dict, seed: int = 0) -> Path:
    """`root/<slug>/<split>/<split>-00000-of-00001.parquet` for counts `{slug: {split: n}}`."""
    import datasets

    from ultrasam_hf.data.schema import FEATURES

    rng = np.random.default_rng(seed)
    for slug, splits in counts.items():
        for split, n in splits.items():
            rows = [make_row(slug, i, split, rng, instances=int(rng.integers(1, 4))) for i in range(n)]
            folder = root / slug / split
            folder.mkdir(parents=True, exist_ok=True)
            datasets.Dataset.from_list(rows, features=FEATURES).to_parquet(
                str(folder / f"{split}-00000-of-00001.parquet")
            )
    return root


@pytest.fixture(scope="session", autouse=True)
def ultrasam_cache(tmp_path_factory):
    """One $ULTRASAM_CACHE for the training tests and the runs they start: a distillation teacher's ONNX graph
    (`--teacher-runtime`) is exported there, never into the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ULTRASAM_CACHE", str(tmp_path_factory.mktemp("ultrasam_cache")))
        yield


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory) -> Path:
    return write_shards(
        tmp_path_factory.mktemp("shards"),
        {"alpha": {"train": 12, "validation": 3}, "beta": {"train": 6, "validation": 2}},
    )


@pytest.fixture(scope="session")
def tiny_init(tmp_path_factory) -> Path:
    """A tiny UltraSam folder whose encoder weights are N(0, 0.02) (SAM's vision config initialises at 1e-10,
    which leaves nothing for an encoder adapter to learn from in a few steps)."""
    from tiny_models import seeded_model

    folder = tmp_path_factory.mktemp("tiny_init")
    seeded_model("tiny").save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_lite_init(tmp_path_factory) -> Path:
    """A tiny TinyViT UltraSam folder (`tiny-lite` preset), encoder weights N(0, 0.02) like `tiny_init`."""
    from tiny_models import seeded_model

    folder = tmp_path_factory.mktemp("tiny_lite_init")
    seeded_model("tiny-lite").save_pretrained(folder)
    return folder
