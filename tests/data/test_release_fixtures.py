"""The nine cards with real releases read here, each built through its own spec on a tiny generated tree laid out
like its release (tests/data/card_fixtures/<slug>.py: `make_release(root) -> expected counts`)."""

import importlib
import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import read_rows
from PIL import Image

from ultrasam_hf.data.builder import build_dataset
from ultrasam_hf.data.cards import load_registry

RELEASE_CARDS = ["bus-bra", "hc18", "ccaui", "usgra", "bus-uclm", "fh-ps-aop", "ubpd", "stu-hospital", "tg3k"]


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.mark.parametrize("slug", RELEASE_CARDS)
def test_card_builds_its_release_layout(slug, registry, tmp_path):
    spec = registry[slug]
    raw = tmp_path / spec.raw_folders[0]
    raw.mkdir(parents=True)
    expected = importlib.import_module(f"card_fixtures.{slug.replace('-', '_')}").make_release(raw)
    manifest = build_dataset(spec, raw, tmp_path / "out", progress=False)
    reasons = [f"{entry['item']}: {entry['reason']}" for entry in manifest["skipped"]]
    counts = {"converted": manifest["items"]["converted"], "skipped": manifest["items"]["skipped"]}
    assert counts == {key: expected[key] for key in counts}, "\n".join(reasons)
    assert manifest["unmapped_labels"] == {}
    classes = Counter()
    for per_split in manifest["instances"].values():
        classes.update(per_split)
    assert dict(classes) == expected["classes"]
    if "class_labels" in expected:
        rows = read_rows(tmp_path / "out", spec.slug)
        assert dict(Counter(obj["class_label"] for row in rows for obj in row["objects"])) == expected["class_labels"]


def load_verify_script():
    path = Path(__file__).resolve().parents[2] / "scripts" / "verify_release.py"
    spec = importlib.util.spec_from_file_location("verify_release", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("slug", ["bus-uclm", "fh-ps-aop", "ubpd", "stu-hospital", "tg3k"])
def test_verify_release_checks_pass_on_a_faithful_build(slug, registry, tmp_path):
    verify = load_verify_script()
    spec = registry[slug]
    raw = tmp_path / spec.raw_folders[0]
    raw.mkdir()
    importlib.import_module(f"card_fixtures.{slug.replace('-', '_')}").make_release(raw)
    build_dataset(spec, raw, tmp_path / "out", progress=False)
    checks = verify.check_rows(raw, verify.read_rows(tmp_path / "out" / slug), spec)
    assert checks["rows checked"] > 0
    assert not checks.get("image pixels differ") and not checks.get("category masks differing"), checks


def test_verify_release_catches_a_mask_that_changed_after_the_build(registry, tmp_path):
    verify = load_verify_script()
    spec = registry["stu-hospital"]
    raw = tmp_path / "stu-hospital"
    raw.mkdir()
    importlib.import_module("card_fixtures.stu_hospital").make_release(raw)
    build_dataset(spec, raw, tmp_path / "out", progress=False)
    mask = raw / "Hospital" / "mask_2.png"
    Image.fromarray(255 - np.asarray(Image.open(mask))).save(mask)
    checks = verify.check_rows(raw, verify.read_rows(tmp_path / "out" / "stu-hospital"), spec)
    assert checks["category masks differing"] == 1 and checks["worst"]["row"] == "image_2 / tumour"
