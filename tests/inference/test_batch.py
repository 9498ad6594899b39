import json

import numpy as np
import pytest
from PIL import Image

from ultrasam_hf.cli import main
from ultrasam_hf.inference.batch import expand_inputs, match_prompts, read_prompts

sitk = pytest.importorskip("SimpleITK")
mask_utils = pytest.importorskip("pycocotools.mask")


@pytest.fixture
def scans(tmp_path):
    """Two grey PNGs (one in a sub-folder), a 4-slice NIfTI with non-trivial geometry and a stray text file."""
    rng = np.random.default_rng(0)
    (tmp_path / "scans" / "left").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (60, 80), dtype=np.uint8)).save(tmp_path / "scans" / "a.png")
    Image.fromarray(rng.integers(0, 255, (50, 70), dtype=np.uint8)).save(tmp_path / "scans" / "left" / "b.png")
    volume = sitk.GetImageFromArray(rng.normal(size=(4, 40, 50)).astype(np.float32))
    volume.SetSpacing((0.5, 0.6, 2.0))
    volume.SetOrigin((1.0, 2.0, 3.0))
    sitk.WriteImage(volume, str(tmp_path / "scans" / "v.nii.gz"))
    (tmp_path / "scans" / "notes.txt").write_text("not an image")
    return tmp_path / "scans"


def decode(annotation):
    rle = dict(annotation["segmentation"])
    rle["counts"] = rle["counts"].encode()
    return mask_utils.decode(rle).astype(bool)


def test_folder_with_json_prompts_objects_frames_and_propagation(tmp_path, scans, model_dir, capsys):
    prompts = {
        "a.png": {"box": [5, 5, 40, 40]},
        "left/b.png": [{"object": "nerve", "points": [[10, 10]]}, {"object": "vessel", "box": [1, 1, 20, 20]}],
        "v.nii.gz": {"frame": 2, "box": [5, 5, 30, 30]},
        "ghost.png": {"box": [1, 1, 2, 2]},
    }
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    out = tmp_path / "out"
    args = ["segment", str(scans), "--prompts", str(tmp_path / "prompts.json"), "--propagate"]
    assert main([*args, "--model", str(model_dir), "--out", str(out)]) == 0
    coco = json.loads((out / "segment_coco.json").read_text())
    assert {image["file_name"] for image in coco["images"]} == {"a.png", "left/b.png", "v.nii.gz"}
    assert coco["skipped"] == [
        {"file": "ghost.png", "reason": f"named in {tmp_path / 'prompts.json'} but not among the inputs"}
    ]
    # one object: a 0/255 PNG equal to its RLE; two objects: a label map 1, 2
    a_mask = np.array(Image.open(out / "a_mask.png"))
    (a_annotation,) = [x for x in coco["annotations"] if x["image_id"] == 1]
    np.testing.assert_array_equal(a_mask > 0, decode(a_annotation))
    assert set(np.unique(a_mask)) <= {0, 255} and a_annotation["area"] == int((a_mask > 0).sum())
    b_labels = np.array(Image.open(out / "left" / "b_mask.png"))
    b_annotations = [x for x in coco["annotations"] if x["image_id"] == 2]
    assert [x["object"] for x in b_annotations] == ["nerve", "vessel"] and set(np.unique(b_labels)) <= {0, 1, 2}
    np.testing.assert_array_equal(b_labels == 2, decode(b_annotations[1]))
    # the volume: propagated both ways from slice 2, written back with its geometry
    v_images = [image for image in coco["images"] if image["file_name"] == "v.nii.gz"]
    assert [image["frame"] for image in v_images] == [0, 1, 2, 3]
    sources = [x["source"] for x in coco["annotations"] if x["image_id"] in {i["id"] for i in v_images}]
    assert sources[2] == "prompt" and set(sources[:2] + sources[3:]) <= {"propagated", "lost"}
    written = sitk.ReadImage(str(out / "v_mask.nii.gz"))
    assert written.GetSpacing() == pytest.approx((0.5, 0.6, 2.0)) and written.GetOrigin() == pytest.approx((1, 2, 3))
    for image, annotation in zip(v_images, [x for x in coco["annotations"] if x["image_id"] >= v_images[0]["id"]]):
        np.testing.assert_array_equal(sitk.GetArrayFromImage(written)[image["frame"]] > 0, decode(annotation))
    assert "3 file(s) segmented" in capsys.readouterr().out


def test_glob_with_one_box_for_every_file_and_overlays(tmp_path, scans, model_dir):
    out = tmp_path / "out"
    code = main(
        ["segment", str(scans / "**" / "*.png"), "--box", "2", "2", "30", "30", "--overlay"]
        + ["--model", str(model_dir), "--out", str(out)]
    )
    assert code == 0
    assert (out / "a_mask.png").is_file() and (out / "left" / "b_overlay.png").is_file()
    coco = json.loads((out / "segment_coco.json").read_text())
    assert [image["file_name"] for image in coco["images"]] == ["a.png", "left/b.png"]
    assert coco["annotations"][0]["prompt"] == {"box": [2.0, 2.0, 30.0, 30.0], "points": [], "labels": []}


def test_csv_prompts_with_clicks_per_row(tmp_path, scans, model_dir):
    (tmp_path / "prompts.csv").write_text(
        "file,object,frame,x0,y0,x1,y1,x,y,label\n"
        "a.png,1,,4,4,30,30,,,\n"
        "a.png,1,,,,,,10,10,1\n"
        "a.png,1,,,,,,25,25,0\n"
        "v.nii.gz,,1,,,,,12,12,\n"
    )
    out = tmp_path / "out"
    args = ["segment", str(scans), "--prompts", str(tmp_path / "prompts.csv"), "--model", str(model_dir)]
    assert main([*args, "--out", str(out)]) == 0
    coco = json.loads((out / "segment_coco.json").read_text())
    first = coco["annotations"][0]
    assert first["prompt"] == {"box": [4.0, 4.0, 30.0, 30.0], "points": [[10.0, 10.0], [25.0, 25.0]], "labels": [1, 0]}
    # without --propagate a frame-specific prompt segments that frame only; b.png has no prompt: a recorded skip
    assert [(i["file_name"], i["frame"]) for i in coco["images"]] == [("a.png", 0), ("v.nii.gz", 1)]
    assert coco["skipped"][0]["file"] == "left/b.png" and "no prompt" in coco["skipped"][0]["reason"]


def test_auto_masks(tmp_path, model_dir):
    image = np.full((64, 64), 30, dtype=np.uint8)
    image[16:48, 16:48] = 220
    Image.fromarray(image).save(tmp_path / "square.png")
    out = tmp_path / "out"
    code = main(
        ["segment", str(tmp_path / "square.png"), "--auto", "--points-per-side", "4", "--pred-iou-thresh", "-1"]
        + ["--stability-thresh", "0", "--min-area", "1", "--model", str(model_dir), "--out", str(out)]
    )
    assert code == 0
    coco = json.loads((out / "segment_coco.json").read_text())
    assert coco["annotations"] and all(a["source"] == "auto" and "stability" in a for a in coco["annotations"])
    labels = np.array(Image.open(out / "square_mask.png"))
    assert labels.shape == (64, 64)


def test_a_failing_file_is_recorded_and_the_rest_still_written(tmp_path, scans, model_dir, capsys):
    (scans / "broken.png").write_bytes(b"\x89PNG truncated")
    out = tmp_path / "out"
    code = main(["segment", str(scans), "--box", "1", "1", "20", "20", "--model", str(model_dir), "--out", str(out)])
    assert code == 1
    coco = json.loads((out / "segment_coco.json").read_text())
    assert [s["file"] for s in coco["skipped"]] == ["broken.png"] and "error" in coco["skipped"][0]["reason"]
    assert (out / "a_mask.png").is_file() and (out / "v_mask.nii.gz").is_file()
    assert "broken.png" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "give one source of prompts"),
        (["--auto", "--box", "1", "1", "5", "5"], "--box/--point and --auto"),
        (["--auto", "--propagate"], "cannot be combined"),
    ],
)
def test_prompt_sources_must_be_one(tmp_path, scans, model_dir, capsys, extra, message):
    assert main(["segment", str(scans), *extra, "--model", str(model_dir), "--out", str(tmp_path / "o")]) == 1
    assert message in capsys.readouterr().err


def test_prompt_file_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,x0,y0,x1,y1\na.png,1,2,3,\n")
    with pytest.raises(ValueError, match="line 2: a box needs all of"):
        read_prompts(bad)
    bad.write_text("name,x,y\na.png,1,2\n")
    with pytest.raises(ValueError, match="'file' column"):
        read_prompts(bad)
    two_boxes = tmp_path / "two.json"
    two_boxes.write_text(json.dumps({"a.png": [{"box": [1, 1, 5, 5]}, {"box": [2, 2, 6, 6]}]}))
    with pytest.raises(ValueError, match="its own 'object' id"):
        read_prompts(two_boxes)
    negative_only = tmp_path / "neg.json"
    negative_only.write_text(json.dumps([{"file": "a.png", "points": [[1, 1]], "labels": [0]}]))
    with pytest.raises(ValueError, match="positive click"):
        read_prompts(negative_only)
    with pytest.raises(ValueError, match="unknown keys"):
        two_boxes.write_text(json.dumps([{"file": "a.png", "bbox": [1, 1, 5, 5]}]))
        read_prompts(two_boxes)


def test_inputs_and_prompt_keys(tmp_path, scans):
    inputs = expand_inputs([str(scans)])
    assert [key for _, key in inputs] == ["a.png", "left/b.png", "v.nii.gz"]  # notes.txt is not an input
    table = {"b.png": {"1": {}}, "a.png": {"1": {}}}
    matched, unmatched = match_prompts(inputs, table)
    assert set(matched) == {"left/b.png", "a.png"} and unmatched == []
    (scans / "right").mkdir()
    Image.fromarray(np.zeros((5, 5), dtype=np.uint8)).save(scans / "right" / "b.png")
    with pytest.raises(ValueError, match="several inputs"):
        match_prompts(expand_inputs([str(scans)]), table)
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        expand_inputs([str(tmp_path / "nothing_here")])


def test_the_decoding_pixel_limit_applies_per_file(tmp_path, scans, model_dir):
    """`--max-pixels` in batch mode: a file over the limit is a recorded skip naming the limit, the others written."""
    out = tmp_path / "out"
    glob = str(scans / "**" / "*.png")
    # a.png is 80x60 = 4,800 px, left/b.png 70x50 = 3,500 px
    code = main(
        ["segment", glob, "--box", "1", "1", "20", "20", "--max-pixels", "4000"]
        + ["--model", str(model_dir), "--out", str(out)]
    )
    assert code == 1
    coco = json.loads((out / "segment_coco.json").read_text())
    assert [s["file"] for s in coco["skipped"]] == ["a.png"] and "4000" in coco["skipped"][0]["reason"].replace(
        ",", ""
    )
    assert (out / "left" / "b_mask.png").is_file() and not (out / "a_mask.png").exists()
