import pytest

from ultrasam_hf.data.cards import (
    default_cards_dir,
    load_anatomy_vocabulary,
    load_registry,
    parse_card,
)
from ultrasam_hf.data.readers import READERS

CARD = """---
pretty_name: Fixture
license: cc-by-4.0
ultrasam:
  slug: {slug}
  index: null
  in_us43d: false
  redistribution: allowed
  source: test
  reader: {reader}
  spec: {{images: "*.png", mask: "masks/{{name}}"}}
  categories: {categories}
  anatomy: {anatomy}
  split: {{rule: group_hash, seed: 0, val: 0.1, test: 0.2}}
---
prose
"""


def write_card(
    tmp_path, slug="fixture", reader="image_mask_pairs", categories="{255: lesion}", anatomy="{lesion: breast lesion}"
):
    path = tmp_path / slug / "README.md"
    path.parent.mkdir(parents=True)
    path.write_text(CARD.format(slug=slug, reader=reader, categories=categories, anatomy=anatomy))
    return path


def test_every_card_in_the_repository_is_valid():
    """Validates all dataset cards, including the ones written for the other 39+ datasets."""
    registry = load_registry(default_cards_dir(), strict=True)
    assert {"bus-bra", "hc18", "ccaui", "usgra"} <= set(registry)
    assert registry["usgra"].in_us43d is False and registry["bus-bra"].index == 11


def test_development_cards_read_their_registry_entries():
    vocabulary = set(load_anatomy_vocabulary())
    assert len(vocabulary) == 58
    registry = load_registry(strict=False)
    assert registry["bus-bra"].categories == {"255": "lesion"}
    assert registry["usgra"].anatomy == {"nerve": "nerve", "vessel": "vessel"}
    assert registry["ccaui"].raw_folders[1] == "common-carotid-artery"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reader": "csv_magic"}, "ultrasam.reader 'csv_magic'"),
        ({"anatomy": "{lesion: breast tumour thing}"}, "not in the us-43d anatomy_vocabulary"),
        ({"anatomy": "{other: tumor}"}, "no entry for category 'lesion'"),
        ({"categories": "{}"}, "ultrasam.categories must be a non-empty mapping"),
        ({"categories": "{lesion: lesion}"}, "must be label values"),
    ],
)
def test_invalid_cards_name_the_card_and_field(tmp_path, kwargs, message):
    card = write_card(tmp_path, **kwargs)
    with pytest.raises(ValueError, match="fixture/README.md") as error:
        parse_card(card, set(load_anatomy_vocabulary()), READERS)
    assert message in str(error.value)


SPLIT = "rule: group_hash, seed: 0, val: 0.1, test: 0.2"


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('name}}"}}', 'name}}", video_frames: true}}', "option(s) ['video_frames'] not implemented by reader"),
        ("val: 0.1, test: 0.2", "val: VAL, test: 0.2", "ultrasam.split.val must be a fraction"),
        (SPLIT, "rule: official_folds, test_folds: [1]", "ultrasam.split needs 'file' and 'fold_column'"),
        (SPLIT, "rule: official_lists", "official_lists needs 'test'"),
        ("  split:", "  class_labels: {{source: folder_name}}\n  split:", "class_labels needs 'file' and 'column'"),
    ],
)
def test_cards_that_would_break_a_build_are_rejected_when_loaded(tmp_path, old, new, message):
    path = tmp_path / "fixture" / "README.md"
    path.parent.mkdir()
    text = CARD.replace(old, new)
    assert text != CARD
    fields = {"categories": "{255: lesion}", "anatomy": "{lesion: breast lesion}"}
    path.write_text(text.format(slug="fixture", reader="image_mask_pairs", **fields))
    with pytest.raises(ValueError, match="fixture/README.md") as error:
        parse_card(path, set(load_anatomy_vocabulary()), READERS)
    assert message in str(error.value)


def test_slug_must_match_folder(tmp_path):
    card = write_card(tmp_path, slug="fixture")
    card.write_text(card.read_text().replace("slug: fixture", "slug: other"))
    with pytest.raises(ValueError, match="must equal the folder name"):
        parse_card(card, set(load_anatomy_vocabulary()), READERS)
