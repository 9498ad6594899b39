"""Reader options the real releases need: LabelMe `image` / `encoding` (UBPD), volume `image_channel` /
`header_spacing` (PSFHS), `official_folder` with a validation folder (TG3K)."""

import base64
import io
import json

import numpy as np
import SimpleITK as sitk
from data_fixtures import build, make_spec, save, two_blobs, ultrasound_like
from PIL import Image
from test_readers import assert_two_blobs, union

SQUARE = [[5, 5], [16, 5], [16, 14], [5, 14]]


def labelme_document(image_path: str, embedded: np.ndarray) -> dict:
    buffer = io.BytesIO()
    Image.fromarray(embedded).save(buffer, format="PNG")
    shapes = [{"label": "shenjing", "points": SQUARE, "shape_type": "polygon"}]
    return {"imagePath": image_path, "imageData": base64.b64encode(buffer.getvalue()).decode(), "shapes": shapes}


def test_labelme_image_template_and_encodings(tmp_path):
    raw = tmp_path / "raw"
    for seed, stem in enumerate(["1_10", "2_5", "3_7"]):
        save(raw / "images" / f"{stem}.png", ultrasound_like(seed=seed))
    drawn = np.full((48, 64), 255, dtype=np.uint8)  # embedded copy with outlines drawn in: must not be used
    labels = raw / "labels" / "json_train"
    labels.mkdir(parents=True)
    (labels / "1_10.json").write_text(json.dumps(labelme_document("1_9.png", drawn)), encoding="utf-8")
    (labels / "2_5.json").write_bytes(
        json.dumps(labelme_document("2-5 - 标定.tif", drawn), ensure_ascii=False).encode("gbk")
    )
    (labels / "4_1.json").write_text(json.dumps(labelme_document("4_1.png", drawn)), encoding="utf-8")  # no image
    spec = make_spec(
        "labelme",
        {"annotations": "labels/json_train/*.json", "image": "images/{stem}.png", "encoding": ["utf-8", "gbk"]},
        {"shenjing": "nerve"},
    )
    manifest, rows = build(spec, raw, tmp_path / "out")
    assert [row["image_id"] for row in rows] == ["1_10", "2_5"]
    square = np.zeros((48, 64), dtype=bool)
    square[5:15, 5:17] = True  # cv2.fillPoly fills the outline's pixels too
    for seed, row in enumerate(rows):
        np.testing.assert_array_equal(
            np.asarray(Image.open(io.BytesIO(row["image"]["bytes"]))), ultrasound_like(seed=seed)
        )
        assert row["source_files"] == [f"labels/json_train/{row['image_id']}.json", f"images/{row['image_id']}.png"]
        np.testing.assert_array_equal(union(row, "nerve"), square)
    assert manifest["skip_reasons"] == {"missing image": 1, "unknown layout": 1}  # 4_1.json's image; 3_7.png unused


def test_labelme_default_encoding_reports_gbk_as_unreadable(tmp_path):
    raw = tmp_path / "raw"
    save(raw / "2_5.png", ultrasound_like())
    (raw / "2_5.json").write_bytes(
        json.dumps(labelme_document("2-5 - 标定.png", ultrasound_like()), ensure_ascii=False).encode("gbk")
    )
    manifest, rows = build(
        make_spec("labelme", {"annotations": "*.json"}, {"shenjing": "nerve"}), raw, tmp_path / "out"
    )
    assert rows == [] and manifest["skip_reasons"]["unreadable annotation"] == 1


def test_volume_image_channel_and_placeholder_spacing(tmp_path):
    raw = tmp_path / "PSFHS"
    plane = ultrasound_like()
    raw.joinpath("image_mha").mkdir(parents=True)
    raw.joinpath("label_mha").mkdir()
    sitk.WriteImage(sitk.GetImageFromArray(np.stack([plane] * 3)), str(raw / "image_mha" / "03744.mha"), False)
    sitk.WriteImage(sitk.GetImageFromArray(two_blobs()), str(raw / "label_mha" / "03744.mha"), False)
    options = {
        "volumes": "**/image_mha/*.mha",
        "id_regex": "^(?P<root>(?:.*/)?)image_mha/[^/]+\\.mha$",
        "mask": "{root}label_mha/{name}",
    }
    manifest, rows = build(make_spec("volume", options, {1: "nerve", 2: "vessel"}), raw, tmp_path / "without")
    assert rows == [] and manifest["skip_reasons"] == {"mask size mismatch": 1}  # [3, H, W] image, [H, W] labels
    spec = make_spec("volume", {**options, "image_channel": 0, "header_spacing": False}, {1: "nerve", 2: "vessel"})
    manifest, rows = build(spec, raw, tmp_path / "with")
    assert manifest["items"] == {"total": 1, "converted": 1, "skipped": 0}
    assert rows[0]["image_id"] == "03744#00000" and rows[0]["pixel_spacing_mm"] is None
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(rows[0]["image"]["bytes"]))), plane)
    assert_two_blobs(rows[0])


def test_official_folder_with_validation_folder(tmp_path):
    raw = tmp_path / "raw"
    for seed, split in enumerate(["train", "train", "val", "test"]):
        save(raw / "image" / split / f"{seed:04d}.png", ultrasound_like(seed=seed))
        save(raw / "mask" / split / f"{seed:04d}.png", (two_blobs() == 2).astype(np.uint8) * 255)
    split = {"rule": "official_folder", "test": "^image/test/", "val": "^image/val/", "val_fraction": 0.0}
    spec = make_spec(
        "image_mask_pairs", {"images": "image/*/*.png", "mask": "mask/{parent}/{name}"}, {255: "vessel"}, split=split
    )
    _, rows = build(spec, raw, tmp_path / "out")
    assert [row["split"] for row in rows] == ["train", "train", "validation", "test"]
