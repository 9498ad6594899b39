"""`ultrasam segment` and `ultrasam demo` given what a careless or hostile user gives them: every failure is one line
on stderr naming the input and what to do, exit status 1, and nothing written; successes on odd inputs say what
they did; no patient data reaches any output."""

import json

import numpy as np
import pytest
from bad_input_helpers import MODEL_CASES, assert_no_phi, assert_one_line_error, run, tree
from PIL import Image

from ultrasam_hf.errors import ImageLoadError, ModelLoadError, UltraSamError

IMAGE_CASES = [
    "empty-file",
    "text-as-png",
    "truncated-png",
    "a-folder",
    "missing",
    "garbage-dicom",
    "truncated-dicom",
    "dicom-without-pixels",
    "over-pixel-limit",
    "too-thin",
]
BOX = ["--box", "10", "10", "60", "60"]


@pytest.mark.parametrize("case", MODEL_CASES)
def test_a_folder_that_is_not_a_complete_model_is_refused(case, bad_models, scan_png, tmp_path, capsys):
    folder, what, hint = bad_models[case]
    code, out, err = run(["segment", scan_png, *BOX, "--model", folder, "--out", tmp_path / "out"], capsys)
    assert code == 1
    assert_one_line_error(err, "ultrasam segment", str(folder), what, hint)
    assert out == "" and not (tmp_path / "out").exists()


def test_a_typo_in_the_model_path_is_not_taken_for_a_hub_id(scan_png, tmp_path, capsys):
    code, _, err = run(["segment", scan_png, *BOX, "--model", "/no/such/dir", "--out", tmp_path / "o"], capsys)
    assert code == 1
    line = assert_one_line_error(err, "ultrasam segment", "/no/such/dir", "does not exist")
    assert "Repo id" not in line


def test_an_unknown_hub_id_offline_is_one_line(scan_png, tmp_path, capsys):
    code, _, err = run(["segment", scan_png, *BOX, "--model", "camma/no-such-model", "--out", tmp_path / "o"], capsys)
    assert code == 1
    assert_one_line_error(err, "ultrasam segment", "camma/no-such-model", "Hub model available here", "repository id")


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_an_image_that_cannot_be_used_is_refused(case, bad_images, model_dir, tmp_path, capsys):
    path, what, hint = bad_images[case]
    code, out, err = run(["segment", path, *BOX, "--model", model_dir, "--out", tmp_path / "out"], capsys)
    assert code == 1
    assert_one_line_error(err, "ultrasam segment", str(path), what, hint)
    assert out == "" and not (tmp_path / "out").exists()


def test_the_pixel_limit_can_be_raised(bad_images, model_dir, tmp_path, capsys, monkeypatch):
    path = bad_images["over-pixel-limit"][0]  # 9000x8000
    monkeypatch.setenv("ULTRASAM_MAX_PIXELS", "80000000")
    code, _, err = run(["segment", path, *BOX, "--model", model_dir, "--out", tmp_path / "env"], capsys)
    assert code == 0, err
    monkeypatch.delenv("ULTRASAM_MAX_PIXELS")
    code, _, err = run(
        ["segment", path, *BOX, "--model", model_dir, "--out", tmp_path / "flag", "--max-pixels", "0"], capsys
    )
    assert code == 0, err
    report = json.loads((tmp_path / "flag" / "segment.json").read_text())
    assert report["image_size"] == [8000, 9000] and report["reduced_by"] == 3 and report["mask_size"] == [2667, 3000]


def test_a_compressed_dicom_without_its_decoder_names_the_plugin(model_dir, tmp_path, capsys):
    from pydicom.data import get_testdata_file
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLSLossless

    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    path = get_testdata_file("MR_small_jpeg_ls_lossless.dcm")
    code, _, err = run(["segment", path, *BOX, "--model", model_dir, "--out", tmp_path / "o"], capsys)
    assert code == 1
    line = assert_one_line_error(err, "ultrasam segment", "MR_small_jpeg_ls_lossless.dcm", "Install one of")
    assert "CompressedSamples" not in line  # the file's PatientName
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "prompt, message",
    [
        ([], "give a prompt: --box"),
        (["--negative", "3", "3"], "--negative clicks need a positive --point or a --box"),
        (["--box", "50", "50", "10", "10"], "empty or inverted"),
        (["--box", "10", "10", "10", "50"], "empty or inverted"),
        (["--box", "500", "500", "600", "600"], "entirely outside"),
        (["--box", "-90", "-90", "-10", "-10"], "entirely outside"),
        (["--box", "nan", "1", "20", "20"], "not finite"),
        (["--point", "inf", "5"], "not finite"),
        (["--point", "900", "5"], "outside the 120x90"),
        (["--point", "5", "-1"], "outside the 120x90"),
        (["--point", "5", "5", "--negative", "500", "5"], "outside the 120x90"),
    ],
)
def test_a_prompt_that_cannot_be_used_is_refused(prompt, message, scan_png, model_dir, tmp_path, capsys):
    code, out, err = run(["segment", scan_png, *prompt, "--model", model_dir, "--out", tmp_path / "o"], capsys)
    assert code == 1
    assert_one_line_error(err, "ultrasam segment", message)
    assert out == "" and not (tmp_path / "o").exists()


def test_options_that_cannot_work_are_refused_before_any_work(scan_png, model_dir, tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "taken.txt"
    a_file.write_text("keep me")
    cases = [
        (["--out", a_file], [str(a_file), "is an existing file", "give a folder"]),
        (["--out", a_file / "sub"], [str(a_file), "is a file"]),
        (["--out", tmp_path / "o", "--frame", "3"], ["--frame 3 is out of range", "1 frame(s)"]),
        (["--out", tmp_path / "o", "--frame", "-1"], ["--frame -1 is out of range"]),
        (["--out", tmp_path / "o", "--max-side", "-1"], ["--max-side must be >= 0"]),
        (["--out", tmp_path / "o", "--max-side", "10"], ["--max-side 10 is below the model's 64-px input"]),
        (["--out", tmp_path / "o", "--max-pixels", "-5"], ["pixel limit must be >= 0"]),
        (["--out", tmp_path / "o", "--device", "warp-drive"], ["'warp-drive' is not a torch device"]),
    ]
    import torch

    if not torch.cuda.is_available():
        cases.append((["--out", tmp_path / "o", "--device", "cuda:7"], ["'cuda:7' is not available", "--device cpu"]))
    for options, needles in cases:
        code, out, err = run(["segment", scan_png, *BOX, "--model", model_dir, *options], capsys)
        assert code == 1, options
        assert_one_line_error(err, "ultrasam segment", *needles)
        assert out == "" and not (tmp_path / "o").exists()
    assert a_file.read_text() == "keep me"
    monkeypatch.setenv("ULTRASAM_MAX_PIXELS", "lots")
    code, _, err = run(["segment", scan_png, *BOX, "--model", model_dir, "--out", tmp_path / "o"], capsys)
    assert code == 1
    assert_one_line_error(err, "ultrasam segment", "$ULTRASAM_MAX_PIXELS='lots' is not a number")


def test_debug_shows_the_traceback(bad_models, scan_png, tmp_path, capsys, monkeypatch):
    folder = bad_models["bert"][0]
    argv = ["segment", scan_png, *BOX, "--model", folder, "--out", tmp_path / "o"]
    with pytest.raises(ModelLoadError, match="'bert' model"):
        run([*argv, "--debug"], capsys)
    with pytest.raises(ModelLoadError):
        run(["--debug", *argv], capsys)
    monkeypatch.setenv("ULTRASAM_DEBUG", "1")
    with pytest.raises(ModelLoadError):
        run(argv, capsys)


def test_a_bug_is_one_line_asking_for_a_report(scan_png, model_dir, tmp_path, capsys, monkeypatch):
    from ultrasam_hf.inference.predictor import UltraSamPredictor

    def broken(self, *args, **kwargs):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(UltraSamPredictor, "predict_mask", broken)
    code, _, err = run(["segment", scan_png, *BOX, "--model", model_dir, "--out", tmp_path / "o"], capsys)
    assert code == 70
    assert "ultrasam segment: internal error (TypeError: unsupported operand)" in err
    assert "--debug" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_dicom_with_patient_tags_leaks_none_of_them(phi_dicom, model_dir, tmp_path, capsys):
    code, out, err = run(
        ["segment", phi_dicom, "--point", "40", "30", "--model", model_dir, "--out", tmp_path / "o"], capsys
    )
    assert code == 0, err
    assert {p.name for p in (tmp_path / "o").iterdir()} == {"exam_mask.png", "exam_overlay.png", "segment.json"}
    assert_no_phi(out, err, tmp_path / "o")
    for png in ("exam_mask.png", "exam_overlay.png"):
        assert not Image.open(tmp_path / "o" / png).info  # no text chunks at all


def test_failures_on_a_dicom_with_patient_tags_leak_none_of_them(phi_dicom, model_dir, tmp_path, capsys):
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(phi_dicom.read_bytes()[:-1500])  # pixel data truncated, header (with the tags) intact
    for argv in (
        ["segment", cut, *BOX, "--model", model_dir, "--out", tmp_path / "o"],
        ["segment", phi_dicom, "--point", "500", "5", "--model", model_dir, "--out", tmp_path / "o"],
        ["segment", phi_dicom, *BOX, "--model", model_dir, "--out", tmp_path / "o", "--max-pixels", "100"],
    ):
        code, out, err = run(argv, capsys)
        assert code == 1
        assert_one_line_error(err, "ultrasam segment")
        assert_no_phi(out, err)
    assert not (tmp_path / "o").exists()


def test_thin_images_keep_their_orientation(model_dir, tmp_path, capsys):
    """A 4-pixel-high image is not read channels-first: the mask has the image's shape."""
    for shape in ((4, 300), (3, 300), (300, 3), (1, 1), (2, 2)):
        path = tmp_path / f"thin_{shape[0]}x{shape[1]}.png"
        Image.fromarray(np.full(shape, 90, np.uint8)).save(path)
        out = tmp_path / f"out_{shape[0]}x{shape[1]}"
        code, _, err = run(["segment", path, "--point", "0", "0", "--model", model_dir, "--out", out], capsys)
        assert code == 0, err
        mask = np.asarray(Image.open(next(out.glob("*_mask.png"))))
        assert mask.shape == shape


def test_a_large_image_is_reduced_and_says_so(model_dir, tmp_path, capsys):
    path = tmp_path / "wide.png"
    image = np.zeros((300, 5000), np.uint8)
    image[100:200, 1000:3000] = 200
    Image.fromarray(image).save(path)
    argv = ["segment", path, "--box", "1000", "100", "3000", "200", "--model", model_dir, "--max-side", "1000"]
    code, _, err = run([*argv, "--out", tmp_path / "o"], capsys)
    assert code == 0
    (line,) = err.strip().splitlines()
    assert line.startswith("ultrasam segment: warning: ") and "1/5 of its size, 1000x60 px" in line
    report = json.loads((tmp_path / "o" / "segment.json").read_text())
    assert report["image_size"] == [300, 5000] and report["mask_size"] == [60, 1000] and report["reduced_by"] == 5
    assert np.asarray(Image.open(tmp_path / "o" / "wide_mask.png")).shape == (60, 1000)
    assert Image.open(tmp_path / "o" / "wide_overlay.png").size == (1000, 60)
    code, _, err = run([*argv[:-2], "--max-side", "0", "--out", tmp_path / "full"], capsys)
    assert code == 0 and err == ""
    assert json.loads((tmp_path / "full" / "segment.json").read_text())["reduced_by"] == 1


def test_a_box_partly_outside_is_clipped_with_one_warning_line(scan_png, model_dir, tmp_path, capsys):
    code, _, err = run(
        ["segment", scan_png, "--box", "10", "10", "500", "50", "--model", model_dir, "--out", tmp_path / "o"], capsys
    )
    assert code == 0
    (line,) = err.strip().splitlines()
    assert line.startswith("ultrasam segment: warning: Box [10.0, 10.0, 500.0, 50.0]") and "clipped to" in line


@pytest.mark.parametrize("case", ["bert", "no-weights", "missing"])
def test_demo_refuses_a_bad_model_folder_before_writing(case, bad_models, tmp_path, capsys):
    pytest.importorskip("pydicom")
    folder, what, hint = bad_models[case]
    code, _, err = run(["demo", "--model", folder, "--out", tmp_path / "demo"], capsys)
    assert code == 1
    assert_one_line_error(err, "ultrasam demo", str(folder), what, hint)
    assert not (tmp_path / "demo").exists()


def test_demo_out_naming_a_file(model_dir, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("x")
    code, _, err = run(["demo", "--model", model_dir, "--out", taken], capsys)
    assert code == 1
    assert_one_line_error(err, "ultrasam demo", str(taken), "is an existing file")
    assert tree(tmp_path) == {"taken": 1}


def test_every_documented_error_is_a_value_error():
    """Backward compatibility: code catching ValueError (and FileNotFoundError for missing inputs) still works."""
    import ultrasam_hf.errors as errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, UltraSamError) and (cls is UltraSamError or issubclass(cls, ValueError))
    assert issubclass(errors.ImageNotFoundError, FileNotFoundError)
    assert issubclass(errors.ModelNotFoundError, FileNotFoundError)
    assert issubclass(errors.CheckpointNotFoundError, FileNotFoundError)
    assert issubclass(errors.ImageDecoderMissingError, RuntimeError)
    assert issubclass(ImageLoadError, ValueError)
