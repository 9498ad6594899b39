"""Builds of the real development sets in ../shared/us, checked pixel for pixel (skip cleanly without the data)."""

import warnings
from functools import lru_cache

import pytest
from data_fixtures import read_rows
from shared_checks import DEV_SETS, bus_bra_tables, check_build, link_subset

from ultrasam_hf.data import build_dataset
from ultrasam_hf.data.cards import load_registry as load_all_cards

pytestmark = pytest.mark.shared_data


@lru_cache
def load_registry(strict=False):
    with warnings.catch_warnings():  # other datasets' cards are validated by test_cards.py, not here
        warnings.simplefilter("ignore")
        return load_all_cards(strict=False)


def build_and_check(slug, raw, out, num_workers=1):
    manifest = build_dataset(load_registry()[slug], raw, out, progress=False, num_workers=num_workers)
    return manifest, check_build(slug, raw, out, manifest)


def test_usgra_subset_keeps_the_official_test_folder(shared_us, tmp_path):
    link_subset(shared_us / "usgra", tmp_path / "raw", "images/*.png", 15)
    raw = link_subset(shared_us / "usgra", tmp_path / "raw", "test/images/*.png", 10)
    manifest, rows = build_and_check("usgra", raw, tmp_path / "out")
    assert rows == 25 and manifest["skipped"] == [] and manifest["rows"]["test"] == 10


@pytest.mark.parametrize("slug, count", [("bus-bra", 40), ("hc18", 20), ("ccaui", 30)])
def test_large_dev_sets_on_a_subset(shared_us, tmp_path, slug, count):
    raw = link_subset(shared_us / DEV_SETS[slug][0], tmp_path / "raw", DEV_SETS[slug][1], count)
    manifest, rows = build_and_check(slug, raw, tmp_path / "out")
    assert rows == count


def test_bus_bra_splits_follow_patients_and_official_fold_1(shared_us, tmp_path):
    raw = link_subset(shared_us / "bus-bra", tmp_path / "raw", "Images/*.png", 80)
    build_dataset(load_registry()["bus-bra"], raw, tmp_path / "out", progress=False)
    cases, folds = bus_bra_tables(raw)
    for row in read_rows(tmp_path / "out", "bus-bra"):
        assert row["group_id"] == cases[row["image_id"]]
        assert (row["split"] == "test") == (folds[row["image_id"]] == "1")
        assert {obj["class_label"] for obj in row["objects"]} <= {"benign", "malignant"}


def test_hc18_pixel_spacing(shared_us, tmp_path):
    raw = link_subset(shared_us / "hc18", tmp_path / "raw", "training_set/*_HC.png", 3)
    build_dataset(load_registry()["hc18"], raw, tmp_path / "out", progress=False)
    assert read_rows(tmp_path / "out", "hc18")[0]["pixel_spacing_mm"][0] == pytest.approx(0.069135804)


def test_ccaui_splits_by_scan(shared_us, tmp_path):
    raw = link_subset(shared_us / "common-carotid-artery", tmp_path / "raw", "US images/*.png", 40)
    build_dataset(load_registry()["ccaui"], raw, tmp_path / "out", progress=False)
    for row in read_rows(tmp_path / "out", "ccaui"):
        assert row["group_id"] == row["image_id"].split("_slice_")[0]


@pytest.mark.slow
@pytest.mark.parametrize("slug", sorted(DEV_SETS))
def test_full_dev_set_build(shared_us, tmp_path, slug):
    manifest, rows = build_and_check(slug, shared_us / DEV_SETS[slug][0], tmp_path / "out", num_workers=2)
    assert rows == manifest["items"]["converted"]


def test_dicom_images_carry_pixels_only(shared_us, tmp_path):
    """A DICOM image in a pair is stored as a PNG of its pixels: no patient-identifying tag reaches the output."""
    import numpy as np
    import pydicom
    from data_fixtures import build, make_spec, save

    source = shared_us / "dicom" / "US1_UNCR.dcm"
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "us1.dcm").write_bytes(source.read_bytes())
    rows_, cols_ = pydicom.dcmread(source).pixel_array.shape[:2]
    mask = np.zeros((rows_, cols_), dtype=np.uint8)
    mask[100:140, 100:160] = 255
    save(raw / "us1_mask.png", mask)
    spec = make_spec("image_mask_pairs", {"images": "*.dcm", "mask": "{stem}_mask.png"}, {255: "nerve"})
    _, rows = build(spec, raw, tmp_path / "out")
    assert rows[0]["image"]["bytes"].startswith(b"\x89PNG")
    patient = str(pydicom.dcmread(source).get("PatientName", "")).encode()
    shard = next((tmp_path / "out" / "fixture").glob("*/*.parquet")).read_bytes()
    assert not patient or patient not in shard


def test_an_undecodable_dicom_is_a_recorded_skip(shared_us, tmp_path):
    """US1_J2KR.dcm (JPEG 2000 lossless, YBR_RCT) stops pydicom's colour conversion: the build records it and goes on.

    Where a decoder handles it, it is converted instead; either way the build finishes with every item accounted for.
    """
    import numpy as np
    from data_fixtures import build, make_spec, save

    source = shared_us / "dicom" / "US1_J2KR.dcm"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "us1.dcm").write_bytes(source.read_bytes())
    (raw / "good.dcm").write_bytes((shared_us / "dicom" / "US1_UNCR.dcm").read_bytes())
    for stem in ("us1", "good"):
        mask = np.zeros((480, 640), dtype=np.uint8)
        mask[100:140, 100:160] = 255
        save(raw / f"{stem}_mask.png", mask)
    spec = make_spec("image_mask_pairs", {"images": "*.dcm", "mask": "{stem}_mask.png"}, {255: "nerve"})
    manifest, rows = build(spec, raw, tmp_path / "out")
    assert manifest["items"]["total"] == 2 and "good" in [row["image_id"] for row in rows]
    skipped = {entry["item"]: entry["reason"] for entry in manifest["skipped"]}
    assert set(skipped) | {row["image_id"] for row in rows} == {"us1", "good"}
    if "us1" in skipped:
        assert skipped["us1"].startswith(("conversion error: ", "unreadable image: ")), skipped["us1"]
