"""One small generated fixture per reader family, built end to end and decoded back."""

import json

import cv2
import h5py
import numpy as np
import pytest
import SimpleITK as sitk
from data_fixtures import build, make_spec, save, two_blobs, ultrasound_like
from PIL import Image
from scipy import ndimage

from ultrasam_hf.data import decode_instance_mask


def union(row, category):
    masks = [decode_instance_mask(obj) for obj in row["objects"] if obj["category"] == category]
    return np.logical_or.reduce(masks) if masks else np.zeros((row["height"], row["width"]), dtype=bool)


def assert_two_blobs(row, nerve="nerve", vessel="vessel"):
    labels = two_blobs(row["height"], row["width"])
    big_one = labels == 1
    big_one[44, 2] = False  # the 1-pixel speck is under min_area: recorded as dropped, not stored
    np.testing.assert_array_equal(union(row, nerve), big_one)
    np.testing.assert_array_equal(union(row, vessel), labels == 2)


@pytest.mark.parametrize("mode", ["L", "P", "RGB-grey"])
def test_pairs_with_label_values(tmp_path, mode):
    raw = tmp_path / "raw"
    save(raw / "images" / "a.png", ultrasound_like())
    labels = two_blobs()
    if mode == "P":
        palette = Image.fromarray(labels, mode="P")
        palette.putpalette([0, 0, 0, 255, 255, 0, 0, 0, 255] + [0] * 759)
        (raw / "masks").mkdir()
        palette.save(raw / "masks" / "a.png")
    elif mode == "RGB-grey":
        save(raw / "masks" / "a.png", np.repeat(labels[..., None], 3, axis=2))
    else:
        save(raw / "masks" / "a.png", labels)
    spec = make_spec("image_mask_pairs", {"images": "images/*.png", "mask": "masks/{name}"}, {1: "nerve", 2: "vessel"})
    manifest, rows = build(spec, raw, tmp_path / "out")
    assert manifest["items"] == {"total": 1, "converted": 1, "skipped": 0}
    assert manifest["dropped_components"]["count"] == 1
    assert_two_blobs(rows[0])


def test_pairs_one_bit_mask_and_threshold(tmp_path):
    raw = tmp_path / "raw"
    save(raw / "img" / "b.bmp", ultrasound_like(seed=1))
    Image.fromarray(two_blobs() == 1).convert("1").save(raw / "img" / "b_mask.png")
    grey = (two_blobs() == 1).astype(np.uint8) * 200 + 20  # TIF mask with a background of 20: threshold 150
    save(raw / "img" / "c.bmp", ultrasound_like(seed=2))
    Image.fromarray(grey).save(raw / "img" / "c_mask.tif")
    one_bit = make_spec("image_mask_pairs", {"images": "img/b.bmp", "mask": "img/{stem}_mask.png"}, {255: "nerve"})
    _, rows = build(one_bit, raw, tmp_path / "out1")
    np.testing.assert_array_equal(union(rows[0], "nerve"), (two_blobs() == 1) & ~single_pixel())
    thresholded = make_spec(
        "image_mask_pairs", {"images": "img/c.bmp", "mask": "img/{stem}_mask.tif", "threshold": 150}, {255: "nerve"}
    )
    _, rows = build(thresholded, raw, tmp_path / "out2")
    np.testing.assert_array_equal(union(rows[0], "nerve"), (two_blobs() == 1) & ~single_pixel())


def single_pixel():
    mask = np.zeros((48, 64), dtype=bool)
    mask[44, 2] = True
    return mask


def test_pairs_colour_coded_and_per_category_files(tmp_path):
    raw = tmp_path / "raw"
    save(raw / "images" / "a.jpg", np.repeat(ultrasound_like()[..., None], 3, axis=2))
    colours = np.zeros((48, 64, 3), dtype=np.uint8)
    labels = two_blobs()
    colours[labels == 1] = (255, 255, 0)
    colours[labels == 2] = (100, 0, 100)
    save(raw / "masks" / "a.png", colours)
    spec = make_spec(
        "image_mask_pairs",
        {"images": "images/*.jpg", "mask": "masks/{stem}.png"},
        {"255,255,0": "nerve", "100,0,100": "vessel"},
    )
    _, rows = build(spec, raw, tmp_path / "out")
    assert_two_blobs(rows[0])
    assert rows[0]["image"]["bytes"] == (raw / "images" / "a.jpg").read_bytes()  # JPEG stored as is, not re-encoded

    save(raw / "per" / "nerve" / "a.png", (labels == 1).astype(np.uint8) * 255)
    save(raw / "per" / "vessel" / "a.png", (labels == 2).astype(np.uint8) * 255)
    per_file = make_spec(
        "image_mask_pairs",
        {"images": "images/*.jpg", "mask": {"n": "per/nerve/{stem}.png", "v": "per/vessel/{stem}.png"}},
        {"n": "nerve", "v": "vessel"},
    )
    _, rows = build(per_file, raw, tmp_path / "out2")
    assert_two_blobs(rows[0])


def ellipse_mask(filled: bool, gap: bool = False) -> np.ndarray:
    mask = np.zeros((60, 80), dtype=np.uint8)
    cv2.ellipse(mask, (40, 30), (25, 15), 20, 0, 300 if gap else 360, 255, thickness=-1 if filled else 1)
    return mask


@pytest.mark.parametrize("kind", ["filled", "outline", "open-outline"])
def test_ellipse_outline_or_filled(tmp_path, kind):
    raw = tmp_path / "raw"
    save(raw / "000_HC.png", ultrasound_like(60, 80))
    save(raw / "000_HC_Annotation.png", ellipse_mask(filled=kind == "filled", gap=kind == "open-outline"))
    spec = make_spec("ellipse", {"images": "*_HC.png", "mask": "{stem}_Annotation.png"}, {255: "fetal head"})
    _, rows = build(spec, raw, tmp_path / "out")
    decoded = union(rows[0], "fetal head")
    filled = ellipse_mask(filled=True) > 0
    assert len(rows[0]["objects"]) == 1
    if kind == "open-outline":  # refitted ellipse: close to, not exactly, the drawn one
        assert (decoded & filled).sum() / (decoded | filled).sum() > 0.9
    elif kind == "outline":  # outline pixels plus everything they enclose
        np.testing.assert_array_equal(decoded, ndimage.binary_fill_holes(ellipse_mask(filled=False) > 0))
    else:
        np.testing.assert_array_equal(decoded, filled)


def test_labelme_polygons(tmp_path):
    raw = tmp_path / "raw"
    save(raw / "scan1.png", ultrasound_like())
    shapes = [
        {"label": "神经", "points": [[5, 5], [16, 5], [16, 14], [5, 14]], "shape_type": "polygon"},
        {"label": "vein", "points": [[40, 30], [45, 35]], "shape_type": "rectangle"},
        {"label": "unlisted", "points": [[1, 1], [3, 1], [3, 3]], "shape_type": "polygon"},
    ]
    (raw / "scan1.json").write_text(
        json.dumps({"imagePath": "scan1.png", "shapes": shapes}, ensure_ascii=False), encoding="utf-8"
    )
    spec = make_spec("labelme", {"annotations": "*.json"}, {"神经": "nerve", "vein": "vessel"})
    manifest, rows = build(spec, raw, tmp_path / "out")
    np.testing.assert_array_equal(union(rows[0], "nerve"), (two_blobs() == 1) & ~single_pixel())
    np.testing.assert_array_equal(union(rows[0], "vessel"), two_blobs() == 2)
    assert manifest["unmapped_labels"] == {"unlisted": 1}


def test_coco_polygons_and_rle(tmp_path):
    raw = tmp_path / "raw"
    save(raw / "images" / "g1.png", ultrasound_like())
    from ultrasam_hf.data.instances import encode_mask

    document = {
        "images": [{"id": 7, "file_name": "g1.png", "height": 48, "width": 64}],
        "categories": [{"id": 1, "name": "GIST"}, {"id": 2, "name": "leiomyoma"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "segmentation": [[5, 5, 16, 5, 16, 14, 5, 14]]},
            {"id": 2, "image_id": 7, "category_id": 2, "segmentation": encode_mask(two_blobs() == 2)},
        ],
    }
    (raw / "annotations").mkdir()
    (raw / "annotations" / "train.json").write_text(json.dumps(document))
    spec = make_spec(
        "coco_polygons",
        {"annotations": "annotations/*.json", "images_dir": "images"},
        {"GIST": "nerve", "leiomyoma": "vessel"},
    )
    _, rows = build(spec, raw, tmp_path / "out")
    assert rows[0]["image_id"] == "train/g1"
    np.testing.assert_array_equal(union(rows[0], "nerve"), (two_blobs() == 1) & ~single_pixel())
    np.testing.assert_array_equal(union(rows[0], "vessel"), two_blobs() == 2)


def test_point_list_json(tmp_path):
    raw = tmp_path / "raw"
    save(raw / "images" / "p1.png", ultrasound_like())
    (raw / "liver").mkdir()
    (raw / "liver" / "p1.json").write_text(json.dumps([[5, 5], [16, 5], [16, 14], [5, 14]]))
    (raw / "mass").mkdir()
    (raw / "mass" / "p1.json").write_text(json.dumps({"points": [[[40, 30], [45, 30], [45, 35], [40, 35]]]}))
    spec = make_spec(
        "point_list_json",
        {"images": "images/*.png", "annotations": {"liver": "liver/{stem}.json", "mass": "mass/{stem}.json"}},
        {"liver": "nerve", "mass": "vessel"},
    )
    _, rows = build(spec, raw, tmp_path / "out")
    np.testing.assert_array_equal(union(rows[0], "nerve"), (two_blobs() == 1) & ~single_pixel())
    np.testing.assert_array_equal(union(rows[0], "vessel"), two_blobs() == 2)


def volume_pair():
    """5 slices of 48x64; labels on slices 1 and 3 only."""
    image = np.stack([ultrasound_like(seed=s).astype(np.int16) * 3 for s in range(5)])
    labels = np.zeros(image.shape, dtype=np.uint8)
    labels[1], labels[3] = two_blobs(), two_blobs()
    return image, labels


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha"])
def test_volume_reader_keeps_annotated_slices(tmp_path, suffix):
    raw = tmp_path / "raw"
    (raw / "images").mkdir(parents=True)
    (raw / "labels").mkdir()
    image, labels = volume_pair()
    volume = sitk.GetImageFromArray(image)
    volume.SetSpacing((0.3, 0.5, 2.0))
    sitk.WriteImage(volume, str(raw / "images" / f"case01{suffix}"))
    sitk.WriteImage(sitk.GetImageFromArray(labels), str(raw / "labels" / f"case01{suffix}"))
    spec = make_spec("volume", {"volumes": f"images/*{suffix}", "mask": "labels/{name}"}, {1: "nerve", 2: "vessel"})
    manifest, rows = build(spec, raw, tmp_path / "out")
    assert [row["image_id"] for row in rows] == ["case01#00001", "case01#00003"]
    assert [row["frame_index"] for row in rows] == [1, 3]
    assert rows[0]["group_id"] == "case01" and manifest["empty_frames"] == 3
    assert rows[0]["pixel_spacing_mm"] == pytest.approx([0.5, 0.3])
    assert_two_blobs(rows[1])


def test_npy_reader(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    image, labels = volume_pair()
    np.save(raw / "s1_img.npy", image.transpose(1, 2, 0))  # frames last, as some releases store them
    np.save(raw / "s1_lab.npy", labels.transpose(1, 2, 0))
    spec = make_spec(
        "npy",
        {"volumes": "*_img.npy", "mask": "{stem}.npy", "id_regex": "(?P<id>.+)_img", "axis": 2},
        {1: "nerve", 2: "vessel"},
    )
    spec.spec["mask"] = "{id}_lab.npy"
    _, rows = build(spec, raw, tmp_path / "out")
    assert [row["frame_index"] for row in rows] == [1, 3]
    assert_two_blobs(rows[0])


def test_hdf5_reader_groups_frames_by_patient(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    image, labels = volume_pair()
    with h5py.File(raw / "dataset.hdf5", "w") as handle:
        handle["image"] = image.astype(np.uint8)
        handle["mask"] = labels
        handle["annot_id"] = np.array([b"p1", b"p1", b"p2", b"p2", b"p2"])
    spec = make_spec(
        "hdf5",
        {"files": "*.hdf5", "image_key": "image", "mask_key": "mask", "group_key": "annot_id"},
        {1: "nerve", 2: "vessel"},
    )
    manifest, rows = build(spec, raw, tmp_path / "out")
    assert [row["image_id"] for row in rows] == ["p1#00001", "p2#00003"]
    assert manifest["items"]["converted"] == 2
    assert_two_blobs(rows[1])


def test_video_with_tracings(tmp_path):
    raw = tmp_path / "raw"
    (raw / "Videos").mkdir(parents=True)
    writer = cv2.VideoWriter(str(raw / "Videos" / "0X1.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for seed in range(6):
        writer.write(cv2.cvtColor(ultrasound_like(seed=seed), cv2.COLOR_GRAY2BGR))
    writer.release()
    # EchoNet-Dynamic chords: first row is the long axis (skipped), then left ends (X1) and right ends (X2)
    rows = ["FileName,X1,Y1,X2,Y2,Frame", "0X1.avi,10,5,10,14,2"]
    rows += [f"0X1.avi,5,{y},16,{y},2" for y in (5, 14)]
    rows += ["0X1.avi,10,5,10,14,4"] + [f"0X1.avi,5,{y},16,{y},4" for y in (5, 14)]
    (raw / "VolumeTracings.csv").write_text("\n".join(rows) + "\n")
    spec = make_spec("video_tracings", {"videos": "Videos/*.avi", "tracings": "VolumeTracings.csv"}, {"lv": "nerve"})
    manifest, out_rows = build(spec, raw, tmp_path / "out")
    assert [row["frame_index"] for row in out_rows] == [2, 4]
    np.testing.assert_array_equal(union(out_rows[0], "nerve"), (two_blobs() == 1) & ~single_pixel())
    assert manifest["items"] == {"total": 1, "converted": 1, "skipped": 0}


def test_pickled_npy_dicts_are_read_without_running_code(tmp_path):
    """FASS-style masks: arrays inside a pickled dict are read; any other pickled object is refused, never run."""
    from ultrasam_hf.data.readers import SkipItem
    from ultrasam_hf.data.readers.npy_dict import read_npy_dict

    masks = {"image": np.zeros((4, 5, 3), np.uint8), "structures": {"liver": np.ones((4, 5), bool)}}
    np.save(tmp_path / "good.npy", masks, allow_pickle=True)
    assert read_npy_dict(tmp_path / "good.npy")["structures"]["liver"].all()

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    np.save(tmp_path / "evil.npy", np.array({"x": Payload()}, dtype=object), allow_pickle=True)
    with pytest.raises(SkipItem, match="refusing to unpickle builtins.print"):
        read_npy_dict(tmp_path / "evil.npy")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(SkipItem, match="not a pickled dict"):
        read_npy_dict(tmp_path / "plain.npy")


def test_field_of_view_heuristic_drops_labels_outside_the_sector(tmp_path):
    """FH-PS-AOP converter: labels outside the convex hull of the largest non-zero region (colour bars cut off by a
    12-pixel erosion) are artefacts."""
    from ultrasam_hf.data.readers.sequences import frames_from_arrays

    image = np.zeros((1, 64, 64), np.uint8)
    image[0, 8:56, 8:48] = 100  # the field of view
    image[0, 8:56, 58:62] = 200  # a colour bar, 4 px wide: eroded away
    labels = np.zeros(image.shape, np.int64)
    labels[0, 20:30, 20:30] = 1
    labels[0, 20:30, 58:62] = 1  # on the colour bar
    frame = next(frames_from_arrays(image, labels, {"fov_heuristic": True}, {"1": "head"}, "x"))
    assert frame.layers["1"].sum() == 100 and not frame.layers["1"][:, 50:].any()


def test_keep_largest_component_and_min_foreground_fraction(tmp_path):
    raw = tmp_path / "raw"
    for name, labels in (("big", two_blobs() > 0), ("tiny", np.pad(np.ones((4, 4), bool), ((0, 44), (0, 60))))):
        save(raw / "images" / f"{name}.png", ultrasound_like(seed=len(name)))
        save(raw / "masks" / f"{name}.png", labels.astype(np.uint8) * 255)
    options = {"images": "images/*.png", "mask": "masks/{name}"}
    options.update(keep_largest_component=True, min_foreground_fraction=0.01)
    spec = make_spec("image_mask_pairs", options, {255: "nerve"})
    _, rows = build(spec, raw, tmp_path / "out")
    assert [row["image_id"] for row in rows] == ["big"]  # tiny: 16 of 3072 pixels, under 1 %: an empty frame
    assert [obj["area"] for obj in rows[0]["objects"]] == [120]  # only the 10x12 block of the three components


def test_fill_holes_and_label_counts_match_scipy_and_numpy():
    from ultrasam_hf.data.readers.image_io import fill_holes, label_counts

    rng = np.random.default_rng(0)
    for index in range(300):
        shape = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
        layer = rng.random(shape) > rng.random()
        if index % 3 == 0:  # rings and blobs with holes
            layer = ndimage.binary_dilation(rng.random(shape) > 0.95, iterations=2) ^ (rng.random(shape) > 0.97)
        np.testing.assert_array_equal(fill_holes(layer), ndimage.binary_fill_holes(layer))
        labels = rng.integers(0, 5, shape).astype([np.uint8, np.int64, np.int32][index % 3])
        for ours, numpys in zip(label_counts(labels), np.unique(labels, return_counts=True)):
            np.testing.assert_array_equal(ours, numpys)
    assert [list(part) for part in label_counts(np.array([[-1, 3], [3, 0]]))] == [[-1, 0, 3], [1, 1, 2]]
