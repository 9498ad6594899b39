"""Generated, small fixtures in the raw layouts of BUS-BRA and USGRA (same files the real releases have), built into
US-43d shards with the data layer's builder and the real dataset cards (what the downstream scripts read)."""

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ultrasam_hf.data import build_dataset


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The tiny models are latency-bound: one thread is faster than several on a shared CPU, and far steadier."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _disk(height, width, cy, cx, radius):
    yy, xx = np.mgrid[:height, :width]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2


@pytest.fixture(scope="session")
def fake_bus_bra(tmp_path_factory) -> Path:
    """12 images of 6 cases in BUS-BRA's layout; malignant lesions are dark and large, benign ones bright."""
    return write_fake_bus_bra(tmp_path_factory.mktemp("bus-bra"))


@pytest.fixture(scope="session")
def fake_usgra(tmp_path_factory) -> Path:
    """USGRA layout: `images/`, `masks/` (palette PNG, 1 nerve, 2 vessel) and `test/images`, `test/masks`; each image
    has one nerve and two vessels."""
    return write_fake_usgra(tmp_path_factory.mktemp("usgra"))


def _build(slug: str, raw: Path, out: Path) -> Path:
    build_dataset(slug, raw, out, progress=False)
    return out


@pytest.fixture(scope="session")
def bus_bra_shards(fake_bus_bra, tmp_path_factory) -> Path:
    """`fake_bus_bra` built with the `bus-bra` card (`ultrasam data build bus-bra --raw ... --out DIR`)."""
    return _build("bus-bra", fake_bus_bra, tmp_path_factory.mktemp("bus-bra-shards"))


@pytest.fixture(scope="session")
def usgra_shards(fake_usgra, tmp_path_factory) -> Path:
    """`fake_usgra` built with the `usgra` card."""
    return _build("usgra", fake_usgra, tmp_path_factory.mktemp("usgra-shards"))


def write_fake_bus_bra(root: Path) -> Path:
    (root / "Images").mkdir()
    (root / "Masks").mkdir()
    rng = np.random.default_rng(0)
    data, folds = [], []
    for case in range(1, 7):
        pathology = "malignant" if case % 2 else "benign"
        for side in ("l", "r"):
            image_id = f"bus_{case:04d}-{side}"
            height, width = 90, 70
            mask = _disk(
                height, width, rng.integers(30, 60), rng.integers(25, 45), 14 if pathology == "malignant" else 9
            )
            image = rng.integers(90, 140, (height, width)).astype(np.uint8)
            image[mask] = 20 if pathology == "malignant" else 220
            Image.fromarray(image).save(root / "Images" / f"{image_id}.png")
            Image.fromarray(mask).save(root / "Masks" / f"mask_{case:04d}-{side}.png")  # 1-bit, as the release
            rows, cols = np.nonzero(mask)
            bbox = f"[{cols.min()},{rows.min()},{cols.max() - cols.min()},{rows.max() - rows.min()}]"
            data.append([image_id, case, "x", pathology, 4, "device", width, height, side, bbox])
            test_fold = 1 if case <= 3 else 2  # both classes in each test fold
            folds.append([image_id, pathology, test_fold] + ["NaN" if k == test_fold else 1 for k in (1, 2, 3, 4, 5)])
    with open(root / "bus_data.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["ID", "Case", "Histology", "Pathology", "BIRADS", "Device", "Width", "Height", "Side", "BBOX"]
        )
        writer.writerows(data)
    with open(root / "5-fold-cv.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "Pathology", "kFold", "valid_1", "valid_2", "valid_3", "valid_4", "valid_5"])
        writer.writerows(folds)
    return root


def write_fake_usgra(root: Path) -> Path:
    rng = np.random.default_rng(1)
    palette = [0, 0, 0, 255, 255, 0, 255, 0, 0] + [0] * (256 * 3 - 9)
    # As in the release, train and test file names are disjoint (the card's image id is the file stem).
    for base, indices in ((root, range(6)), (root / "test", range(6, 9))):
        (base / "images").mkdir(parents=True)
        (base / "masks").mkdir(parents=True)
        for index in indices:
            size = 80
            labels = np.zeros((size, size), np.uint8)
            labels[_disk(size, size, rng.integers(20, 60), rng.integers(15, 30), 8)] = 1
            labels[_disk(size, size, rng.integers(15, 30), rng.integers(50, 65), 6)] = 2
            labels[_disk(size, size, rng.integers(50, 65), rng.integers(50, 65), 6)] = 2
            image = rng.integers(60, 100, (size, size)).astype(np.uint8)
            image[labels == 1] = 200
            image[labels == 2] = 10
            Image.fromarray(image).save(base / "images" / f"{index:04d}.png")
            mask = Image.fromarray(labels, mode="P")
            mask.putpalette(palette)
            mask.save(base / "masks" / f"{index:04d}.png")
    return root
