"""Licences travel with the data: every row names its licence, and a build's licence mix is one call away."""

import json

import pytest
from data_fixtures import build, make_spec, save, two_blobs, ultrasound_like

from ultrasam_hf.data import licence_mix


@pytest.fixture
def mixed_build(tmp_path):
    """Three datasets under two licences: 4 + 3 images under cc-by-4.0, 2 under "other" (redistribution unknown)."""
    split = {"rule": "group_hash", "seed": 0, "val": 0.0, "test": 0.5}
    for slug, licence, redistribution, count in (
        ("alpha", "cc-by-4.0", "allowed", 4),
        ("beta", "cc-by-4.0", "allowed", 3),
        ("gamma", "other", "unknown", 2),
    ):
        raw = tmp_path / "raw" / slug
        for index in range(count):
            save(raw / "images" / f"{slug}{index}.png", ultrasound_like(seed=100 * len(slug) + index))
            save(raw / "masks" / f"{slug}{index}.png", two_blobs())
        spec = make_spec(
            "image_mask_pairs",
            {"images": "images/*.png", "mask": "masks/{name}"},
            {1: "nerve"},
            split=split,
            slug=slug,
            licence_note=f"note of {slug}",
        )
        spec.license, spec.redistribution = licence, redistribution
        _, rows = build(spec, raw, tmp_path / "out")
        assert {row["license"] for row in rows} == {licence}
    return tmp_path / "out"


def test_licence_mix_counts_datasets_rows_and_items_per_licence(mixed_build):
    mix = licence_mix(mixed_build)
    assert list(mix["licences"]) == ["cc-by-4.0", "other"]
    cc = mix["licences"]["cc-by-4.0"]
    assert cc["datasets"] == ["alpha", "beta"] and cc["rows"] == 7 and cc["items"] == 7
    assert sum(cc["rows_by_split"].values()) == 7
    assert mix["licences"]["other"] == {
        "datasets": ["gamma"],
        "rows": 2,
        "items": 2,
        "rows_by_split": mix["datasets"]["gamma"]["rows_by_split"],
    }
    assert (
        mix["datasets"]["gamma"]["redistribution"] == "unknown"
        and mix["datasets"]["gamma"]["licence_note"] == "note of gamma"
    )
    assert licence_mix(mixed_build / "beta")["licences"]["cc-by-4.0"]["datasets"] == ["beta"]  # one dataset folder


def test_licence_mix_of_a_folder_without_a_build(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset manifest"):
        licence_mix(tmp_path)


def test_cli_data_info_prints_the_licence_mix(mixed_build, capsys):
    from ultrasam_hf.cli import main

    assert main(["data", "info", str(mixed_build)]) == 0
    table = capsys.readouterr().out
    assert "licence mix" in table
    cc_line = next(line for line in table.splitlines() if line.startswith("cc-by-4.0"))
    assert cc_line.split()[:4] == ["cc-by-4.0", "2", "7", "7"] and cc_line.endswith("alpha, beta")
    assert main(["data", "info", "--json", str(mixed_build / "alpha")]) == 0
    assert json.loads(capsys.readouterr().out)["licence_mix"]["licences"]["cc-by-4.0"]["rows"] == 4
