"""`ultrasam eval` given folders that are not complete models and outputs that cannot be written: one line, exit
status 1, nothing written; and an evaluation of data built from DICOMs with patient tags leaks none of them."""

import sys
from pathlib import Path

import numpy as np
import pytest
from bad_input_helpers import PHI, assert_no_phi, assert_one_line_error, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))  # data_fixtures: the builder on fixtures
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # dicom_fixtures

from data_fixtures import build, make_spec, save, two_blobs  # noqa: E402
from dicom_fixtures import make_dicom_dataset  # noqa: E402


@pytest.fixture(scope="module")
def phi_shards(tmp_path_factory):
    """Shards built by `ultrasam data build`'s builder from two DICOMs whose headers carry `PHI`."""
    pytest.importorskip("pydicom")
    root = tmp_path_factory.mktemp("phi_build")
    rng = np.random.default_rng(0)
    for stem in ("exam1", "exam2"):
        pixels = rng.integers(0, 120, (48, 64), dtype=np.uint8)
        pixels[two_blobs() > 0] = 220
        path = root / "raw" / "images" / f"{stem}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        make_dicom_dataset(pixels, "MONOCHROME2", **PHI).save_as(path, enforce_file_format=True)
        save(root / "raw" / "masks" / f"{stem}.png", two_blobs())
    spec = make_spec(
        "image_mask_pairs", {"images": "images/*.dcm", "mask": "masks/{stem}.png"}, {1: "nerve", 2: "vessel"}
    )
    manifest, rows = build(spec, root / "raw", root / "shards")
    assert len(rows) == 2, manifest
    return root / "shards"


@pytest.mark.parametrize("case", ["bert", "no-weights", "bad-json", "foreign-weights", "truncated-weights", "a-file"])
def test_eval_refuses_a_folder_that_is_not_a_complete_model(case, bad_models, phi_shards, tmp_path, capsys):
    folder, what, hint = bad_models[case]
    code, out, err = run(
        [
            "eval",
            "--model",
            folder,
            "--data",
            phi_shards,
            "--split",
            "train",
            "--out",
            tmp_path / "o",
            "--no-progress",
        ],
        capsys,
    )
    assert code == 1
    assert_one_line_error(err, "ultrasam eval", str(folder), what, hint)
    assert out == "" and not (tmp_path / "o").exists()


def test_eval_refuses_out_naming_a_file(model_dir, phi_shards, tmp_path, capsys):
    taken = tmp_path / "results.json"
    taken.write_text("{}")
    code, _, err = run(
        ["eval", "--model", model_dir, "--data", phi_shards, "--split", "train", "--out", taken], capsys
    )
    assert code == 1
    assert_one_line_error(err, "ultrasam eval", str(taken), "is an existing file")
    assert taken.read_text() == "{}"


def test_eval_of_data_built_from_dicoms_with_patient_tags_leaks_none(model_dir, phi_shards, tmp_path, capsys):
    code, out, err = run(
        [
            "eval",
            "--model",
            model_dir,
            "--data",
            phi_shards,
            "--split",
            "train",
            "--prompts",
            "box",
            "point",
            "--worst",
            "2",
            "--no-baselines",
            "--no-progress",
            "--out",
            tmp_path / "eval",
        ],
        capsys,
    )
    assert code == 0, err
    assert (tmp_path / "eval" / "results.json").is_file() and list((tmp_path / "eval").rglob("*.png"))
    assert_no_phi(out, err, tmp_path / "eval")
