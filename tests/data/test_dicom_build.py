"""DICOM in the data build: the stored pixels are the ones `ultrasam segment` sees on the same file (both decode
with `load_frames`), and a cine DICOM's frames are never silently dropped.

Formerly the build's own DICOM reader skipped the MONOCHROME1 inversion and the VOI window and kept frame 0 of a
cine only, so a stored MONOCHROME1 image was 255 minus what inference saw.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import build, make_spec, save, two_blobs

from ultrasam_hf import load_frames

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for dicom_fixtures

from dicom_fixtures import make_dicom_dataset  # noqa: E402

pytest.importorskip("pydicom")

SPEC = {"images": "images/*.dcm", "mask": "masks/{stem}.png"}


def write_dicom(path: Path, pixels, photometric, frames=1, **tags) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    make_dicom_dataset(pixels, photometric, frames=frames, **tags).save_as(path, enforce_file_format=True)
    return path


def test_monochrome1_and_cine_dicom_are_stored_as_inference_sees_them(tmp_path):
    raw = tmp_path / "raw"
    rng = np.random.default_rng(0)
    # MONOCHROME1 (white = low values), 12-bit values in 16 bits, with a window narrower than the stored range
    mono1 = write_dicom(
        raw / "images" / "mono1.dcm",
        rng.integers(0, 4096, (48, 64), dtype=np.uint16),
        "MONOCHROME1",
        WindowCenter=2048,
        WindowWidth=2000,
        PixelSpacing=[0.2, 0.3],
    )
    cine = write_dicom(
        raw / "images" / "cine.dcm", rng.integers(0, 256, (3, 48, 64), dtype=np.uint8), "MONOCHROME2", frames=3
    )
    for stem in ("mono1", "cine"):
        save(raw / "masks" / f"{stem}.png", two_blobs())
    manifest, rows = build(make_spec("image_mask_pairs", SPEC, {1: "nerve", 2: "vessel"}), raw, tmp_path / "out")

    (row,) = rows
    assert row["image_id"] == "mono1"
    seen_by_inference = load_frames(mono1)[0]
    np.testing.assert_array_equal(load_frames(row["image"])[0], seen_by_inference)
    assert row["pixel_spacing_mm"] == pytest.approx([0.2, 0.3])

    # the cine pairs 3 frames with one 2-D mask: none is stored, and the manifest says so with the frame count
    (skip,) = [entry for entry in manifest["skipped"] if entry["item"] == "cine"]
    assert skip["reason"].startswith("multi-frame image") and "3 frames" in skip["reason"]
    assert len(load_frames(cine)) == 3
