"""Bad input is recorded, not fatal; builds are deterministic, resumable and accounted for item by item."""

import json

import numpy as np
import pytest

from ultrasam_hf.data import builder

from data_fixtures import build, make_spec, save, two_blobs, ultrasound_like


PAIRS = {"images": "images/*.png", "mask": "masks/{name}"}


def write_pairs(raw, count=6):
    for index in range(count):
        save(raw / "images" / f"im{index:02d}.png", ultrasound_like(seed=index))
        save(raw / "masks" / f"im{index:02d}.png", two_blobs())


def test_bad_inputs_are_recorded_as_skips_and_the_build_goes_on(tmp_path):
    raw = tmp_path / "raw"
    write_pairs(raw, 2)
    save(raw / "images" / "truncated.png", ultrasound_like(seed=10))
    data = (raw / "images" / "truncated.png").read_bytes()
    (raw / "images" / "truncated.png").write_bytes(data[: len(data) // 2])
    save(raw / "masks" / "truncated.png", two_blobs())
    save(raw / "images" / "wrong_size.png", ultrasound_like(seed=11))
    save(raw / "masks" / "wrong_size.png", two_blobs(64, 80))
    save(raw / "images" / "empty.png", ultrasound_like(seed=12))
    save(raw / "masks" / "empty.png", np.zeros((48, 64), dtype=np.uint8))
    save(raw / "images" / "no_mask.png", ultrasound_like(seed=13))
    (raw / "notes").mkdir()
    (raw / "notes" / "readme.docx").write_bytes(b"not part of any layout")
    spec = make_spec("image_mask_pairs", PAIRS, {1: "nerve", 2: "vessel"})
    manifest, rows = build(spec, raw, tmp_path / "out")
    reasons = {entry["item"]: entry["reason"].split(":")[0] for entry in manifest["skipped"]}
    assert reasons == {
        "truncated": "unreadable image",
        "wrong_size": "mask size mismatch",
        "empty": "empty mask",
        "no_mask": "missing mask",
        "notes/readme.docx": "unknown layout",
    }
    assert manifest["items"] == {"total": 7, "converted": 2, "skipped": 5}
    assert [row["image_id"] for row in rows] == ["im00", "im01"]


def test_unknown_layout_records_every_file(tmp_path):
    raw = tmp_path / "raw"
    save(raw / "scans" / "x.png", ultrasound_like())
    manifest, rows = build(make_spec("image_mask_pairs", PAIRS, {1: "nerve"}), raw, tmp_path / "out")
    assert rows == [] and manifest["items"] == {"total": 1, "converted": 0, "skipped": 1}
    assert manifest["skip_reasons"] == {"unknown layout": 1}


def test_rerunning_a_finished_build_does_no_work(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    write_pairs(raw)
    spec = make_spec("image_mask_pairs", PAIRS, {1: "nerve", 2: "vessel"}, split={"rule": "group_hash", "seed": 0, "val": 0.3, "test": 0.3})
    first, _ = build(spec, raw, tmp_path / "out", max_shard_mb=0.005)
    shards = sorted((tmp_path / "out" / "fixture").glob("*/*.parquet"))
    assert len(shards) > 2  # size-bounded: 5 KB shards hold one or two 3 KB images
    mtimes = [path.stat().st_mtime_ns for path in shards]

    def no_work(*args, **kwargs):
        raise AssertionError("a finished shard was converted again")

    monkeypatch.setattr(builder, "convert_item", no_work)
    second, _ = build(spec, raw, tmp_path / "out", max_shard_mb=0.005)
    assert [path.stat().st_mtime_ns for path in shards] == mtimes
    assert first["shards"] == second["shards"] and first["items"] == second["items"]


def test_output_is_deterministic_across_worker_counts(tmp_path):
    raw = tmp_path / "raw"
    write_pairs(raw)
    spec = make_spec("image_mask_pairs", PAIRS, {1: "nerve", 2: "vessel"}, split={"rule": "group_hash", "seed": 0, "val": 0.3, "test": 0.3})
    one, _ = build(spec, raw, tmp_path / "one", num_workers=1)
    two, _ = build(spec, raw, tmp_path / "two", num_workers=2)
    assert [shard["sha256"] for shard in one["shards"]] == [shard["sha256"] for shard in two["shards"]]


def test_interrupted_shard_is_redone(tmp_path):
    raw = tmp_path / "raw"
    write_pairs(raw, 2)
    spec = make_spec("image_mask_pairs", PAIRS, {1: "nerve", 2: "vessel"})
    build(spec, raw, tmp_path / "out")
    shard = next((tmp_path / "out" / "fixture").glob("*/*.parquet"))
    shard.with_name(shard.name + ".json").unlink()  # as if killed between the parquet and its sidecar
    manifest, rows = build(spec, raw, tmp_path / "out")
    assert len(rows) == 2 and manifest["items"]["converted"] == 2


@pytest.mark.parametrize("policy, kept", [("keep", 4), ("drop-exact", 3), ("drop-near", 2)])
def test_duplicate_policies(tmp_path, policy, kept):
    raw = tmp_path / "raw"
    base = ultrasound_like(seed=0)
    near = base.copy()
    near[0, 0] = 255 - near[0, 0]  # one pixel changed: same perceptual hash
    for name, image in {"a": base, "b": base, "c": near, "d": ultrasound_like(seed=5)}.items():
        save(raw / "images" / f"{name}.png", image)
        save(raw / "masks" / f"{name}.png", two_blobs())
    manifest, rows = build(make_spec("image_mask_pairs", PAIRS, {1: "nerve", 2: "vessel"}), raw, tmp_path / "out", duplicates=policy)
    assert len(rows) == kept
    assert manifest["duplicates"]["exact"] == 1 and manifest["duplicates"]["near"] == 1
    assert manifest["items"]["converted"] + manifest["items"]["skipped"] == 4


def test_manifest_checksums_cover_raw_files_and_shards(tmp_path):
    raw = tmp_path / "raw"
    write_pairs(raw, 2)
    manifest, _ = build(make_spec("image_mask_pairs", PAIRS, {1: "nerve", 2: "vessel"}), raw, tmp_path / "out")
    assert set(manifest["raw_sha256"]) == {"images/im00.png", "images/im01.png", "masks/im00.png", "masks/im01.png"}
    saved = json.loads((tmp_path / "out" / "fixture" / "manifest.json").read_text())
    assert saved["shards"][0]["sha256"] == builder.file_sha256(tmp_path / "out" / "fixture" / saved["shards"][0]["path"])
