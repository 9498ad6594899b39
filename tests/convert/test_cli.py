"""`ultrasam convert` on the real LiteMedSAM checkpoint (`ultrasam demo`: tests/inference/test_demo.py)."""

import json

import pytest
import torch

from ultrasam_hf.cli import main


@pytest.fixture(scope="module")
def converted_dir(tmp_path_factory, litemedsam_path):
    out = tmp_path_factory.mktemp("cache") / "litemedsam"
    assert main(["convert", "--from", "litemedsam", str(litemedsam_path), "--out", str(out)]) == 0
    return out


def test_convert_writes_a_complete_folder(converted_dir, litemedsam_converted):
    from ultrasam_hf import UltraSamModel

    names = {p.name for p in converted_dir.iterdir()}
    assert {"model.safetensors", "config.json", "README.md"} <= names
    assert any("processor" in n or "preprocessor" in n for n in names), names
    config = json.loads((converted_dir / "config.json").read_text())
    assert config["preset"] == "lite" and config["preprocessing"] == "litemedsam"
    card = (converted_dir / "README.md").read_text()
    for expected in (
        "LiteMedSAM",
        "Apache-2.0",
        "ultrasam convert --from litemedsam",
        "@article{MedSAM",
        "Intended use",
    ):
        assert expected in card
    reloaded = UltraSamModel.from_pretrained(converted_dir).state_dict()
    expected = litemedsam_converted.state_dict()
    assert set(reloaded) == set(expected)
    assert all(torch.equal(reloaded[k], expected[k]) for k in expected)


def test_convert_reports_errors_by_name(tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    torch.save({"image_encoder.patch_embed.seq.0.c.weight": torch.zeros(1)}, bad)
    assert main(["convert", "--from", "litemedsam", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "missing keys" in capsys.readouterr().err
