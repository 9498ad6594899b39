"""The nine cards with real releases read here, each built through its own spec on a tiny generated tree laid out
like its release (tests/data/card_fixtures/<slug>.py: `make_release(root) -> expected counts`)."""

import importlib
from collections import Counter

import pytest

from ultrasam_hf.data.builder import build_dataset
from ultrasam_hf.data.cards import load_registry

from data_fixtures import read_rows


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
