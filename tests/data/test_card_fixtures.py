"""Every dataset card, built through its own spec on a tiny tree laid out like its release (card_fixtures/)."""

import importlib
from collections import Counter

import pytest
from data_fixtures import read_rows

from ultrasam_hf.data.builder import build_dataset
from ultrasam_hf.data.cards import (
    VOCABULARY_CARD,
    default_cards_dir,
    load_anatomy_vocabulary,
    parse_card,
)
from ultrasam_hf.data.readers import READERS

CARDS_DIR = default_cards_dir()
SLUGS = sorted(path.parent.name for path in CARDS_DIR.glob("*/README.md") if path.parent.name != VOCABULARY_CARD)


def card_spec(slug):
    return parse_card(CARDS_DIR / slug / "README.md", set(load_anatomy_vocabulary(CARDS_DIR)), READERS)


def fixture_module(slug):
    name = f"card_fixtures.{slug.replace('-', '_')}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
        pytest.fail(
            f"dataset card {slug!r} has no release fixture: write tests/data/card_fixtures/{slug.replace('-', '_')}.py"
        )


def test_every_card_is_covered():
    assert len(SLUGS) >= 44, SLUGS


@pytest.mark.parametrize("slug", SLUGS)
def test_card_declares_only_implemented_options(slug):
    spec = card_spec(slug)  # parse_card rejects an unimplemented option, naming card and option
    assert set(spec.spec) <= READERS[spec.reader].options


@pytest.mark.parametrize("slug", SLUGS)
def test_card_builds_its_release_layout(slug, tmp_path):
    spec = card_spec(slug)
    raw = tmp_path / spec.raw_folders[0]
    raw.mkdir(parents=True)
    expected = fixture_module(slug).make_release(raw)
    manifest = build_dataset(spec, raw, tmp_path / "out", progress=False)
    counts = {"converted": manifest["items"]["converted"], "skipped": manifest["items"]["skipped"]}
    reasons = [f"{entry['item']}: {entry['reason']}" for entry in manifest["skipped"]]
    assert counts == {key: expected[key] for key in counts}, "\n".join(reasons)
    if "classes" in expected:
        classes = Counter()
        for per_split in manifest["instances"].values():
            classes.update(per_split)
        assert dict(classes) == expected["classes"]
    if "class_labels" in expected:
        rows = read_rows(tmp_path / "out", spec.slug)
        labels = Counter(obj["class_label"] for row in rows for obj in row["objects"])
        assert dict(labels) == expected["class_labels"]
