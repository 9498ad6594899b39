"""Bad input is recorded, not fatal; builds are deterministic, resumable and accounted for item by item."""

import json

import numpy as np
import pytest
from data_fixtures import build, make_spec, save, two_blobs, ultrasound_like

from ultrasam_hf.data import builder

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
    spec = make_spec(
        "image_mask_pairs",
        PAIRS,
        {1: "nerve", 2: "vessel"},
        split={"rule": "group_hash", "seed": 0, "val": 0.3, "test": 0.3},
    )
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
    spec = make_spec(
        "image_mask_pairs",
        PAIRS,
        {1: "nerve", 2: "vessel"},
        split={"rule": "group_hash", "seed": 0, "val": 0.3, "test": 0.3},
    )
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
    manifest, rows = build(
        make_spec("image_mask_pairs", PAIRS, {1: "nerve", 2: "vessel"}), raw, tmp_path / "out", duplicates=policy
    )
    assert len(rows) == kept
    assert manifest["duplicates"]["exact"] == 1 and manifest["duplicates"]["near"] == 1
    assert manifest["items"]["converted"] + manifest["items"]["skipped"] == 4


def test_manifest_checksums_cover_raw_files_and_shards(tmp_path):
    raw = tmp_path / "raw"
    write_pairs(raw, 2)
    manifest, _ = build(make_spec("image_mask_pairs", PAIRS, {1: "nerve", 2: "vessel"}), raw, tmp_path / "out")
    assert set(manifest["raw_sha256"]) == {"images/im00.png", "images/im01.png", "masks/im00.png", "masks/im01.png"}
    saved = json.loads((tmp_path / "out" / "fixture" / "manifest.json").read_text())
    assert saved["shards"][0]["sha256"] == builder.file_sha256(
        tmp_path / "out" / "fixture" / saved["shards"][0]["path"]
    )


def png_claiming_size(width: int, height: int) -> bytes:
    """A few hundred bytes whose header claims width x height grey pixels (a decompression bomb for PIL)."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_decoder_errors_are_recorded_skips_never_aborts(tmp_path, monkeypatch):
    """A decompression bomb and a decoder that raises anything at all become skips naming the item and the error."""
    from ultrasam_hf.data.readers import pairs

    raw = tmp_path / "raw"
    write_pairs(raw, 3)
    (raw / "images" / "bomb.png").write_bytes(png_claiming_size(100_000, 100_000))
    save(raw / "masks" / "bomb.png", two_blobs())
    real_load_frames = pairs.load_frames

    def load_frames(root, item, spec, categories):
        if item.item_id == "im01":
            raise RuntimeError("codec exploded\non two lines")
        yield from real_load_frames(root, item, spec, categories)

    monkeypatch.setattr(pairs, "load_frames", load_frames)
    manifest, rows = build(make_spec("image_mask_pairs", PAIRS, {1: "nerve", 2: "vessel"}), raw, tmp_path / "out")
    reasons = {entry["item"]: entry["reason"] for entry in manifest["skipped"]}
    assert reasons["bomb"].startswith("unreadable image: bomb.png: ") and "decompression bomb" in reasons["bomb"]
    assert reasons["im01"] == "conversion error: RuntimeError: codec exploded on two lines"
    assert manifest["skip_reasons"] == {"conversion error": 1, "unreadable image": 1}
    assert [row["image_id"] for row in rows] == ["im00", "im02"]
    assert (tmp_path / "out" / "fixture" / "manifest.json").is_file()


def fold_table(raw, listed):
    (raw / "folds.csv").write_text("ID,fold\n" + "".join(f"{name},{index % 2}\n" for index, name in enumerate(listed)))


def test_image_missing_from_the_release_table_is_named(tmp_path):
    raw = tmp_path / "raw"
    write_pairs(raw, 4)
    fold_table(raw, ["im00", "im01", "im03"])
    split = {
        "rule": "official_folds",
        "file": "folds.csv",
        "id_column": "ID",
        "fold_column": "fold",
        "test_folds": [1],
    }
    spec = make_spec("image_mask_pairs", {**PAIRS, "metadata": ["folds.csv"]}, {1: "nerve", 2: "vessel"}, split=split)
    with pytest.raises(
        ValueError,
        match=r"1 item\(s\) missing.*im02: not in release table: folds.csv has no fold for 'im02'.*unlisted: skip",
    ):
        build(spec, raw, tmp_path / "out")
    spec.split = {**split, "unlisted": "skip"}
    manifest, rows = build(spec, raw, tmp_path / "out")
    assert manifest["skipped"] == [
        {
            "item": "im02",
            "reason": "not in release table: folds.csv has no fold for 'im02'",
            "files": ["images/im02.png", "masks/im02.png"],
        }
    ]
    assert [row["image_id"] for row in rows] == ["im00", "im01", "im03"]
    assert {row["image_id"]: row["split"] for row in rows} == {"im00": "train", "im01": "test", "im03": "train"}


def registry_of(*specs):
    for spec in specs:
        spec.raw_folders = [spec.slug]
    return {spec.slug: spec for spec in specs}


def test_build_all_records_a_broken_dataset_and_builds_the_rest(tmp_path, monkeypatch):
    from ultrasam_hf.data.readers import ellipse

    for slug in ("good", "broken"):
        write_pairs(tmp_path / "raw" / slug, 2)

    def list_items(*args):
        raise KeyError("a card field the reader needs")

    monkeypatch.setattr(ellipse, "list_items", list_items)
    registry = registry_of(
        make_spec("image_mask_pairs", PAIRS, {1: "nerve", 2: "vessel"}, slug="good"),
        make_spec("ellipse", {"images": "images/*.png"}, {1: "nerve"}, slug="broken"),
    )
    summary = builder.build_all(tmp_path / "raw", tmp_path / "out", registry=registry, progress=False)
    assert summary["not_built"] == {"broken": "build failed: KeyError: 'a card field the reader needs'"}
    assert summary["datasets"]["good"]["items"]["converted"] == 2


def test_build_all_is_the_same_bytes_whatever_the_worker_count(tmp_path):
    for slug, count in (("first", 5), ("second", 7)):
        write_pairs(tmp_path / "raw" / slug, count)
    split = {"rule": "group_hash", "seed": 0, "val": 0.3, "test": 0.3}
    registry = registry_of(
        *(
            make_spec("image_mask_pairs", PAIRS, {1: "nerve", 2: "vessel"}, slug=slug, split=split)
            for slug in ("first", "second")
        )
    )
    digests = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        builder.build_all(
            tmp_path / "raw",
            out,
            registry=registry,
            num_workers=workers,
            max_shard_mb=0.005,
            progress=False,
            duplicates="drop-exact",
        )
        digests[workers] = [
            (path.relative_to(out).as_posix(), builder.file_sha256(path)) for path in sorted(out.glob("*/*/*.parquet"))
        ]
    assert len(digests[1]) > 4 and digests[1] == digests[2]
    duplicates = json.loads((tmp_path / "out2" / "duplicates.json").read_text())
    assert len(duplicates["cross_dataset"]) == 5  # "second" repeats the five images of "first": found across datasets


def test_a_failing_writer_stops_the_workers_instead_of_hanging(tmp_path, monkeypatch):
    import signal
    import time

    raw = tmp_path / "raw"
    write_pairs(raw, 12)
    monkeypatch.setattr(builder, "TASKS_PER_CHUNK", 1)
    monkeypatch.setattr(builder, "IN_FLIGHT_PER_WORKER", 1)  # the feeder waits for the writer after two items

    def disk_full(path, rows):
        time.sleep(0.5)  # meanwhile the feeder uses the permit of the item just taken and waits for the next one
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(builder, "write_shard", disk_full)
    signal.signal(signal.SIGALRM, lambda *args: (_ for _ in ()).throw(TimeoutError("build hung")))
    signal.alarm(60)
    try:
        with pytest.raises(OSError, match="No space left"):
            build(
                make_spec("image_mask_pairs", PAIRS, {1: "nerve", 2: "vessel"}),
                raw,
                tmp_path / "out",
                num_workers=2,
                max_shard_mb=0.005,
            )
    finally:
        signal.alarm(0)
