"""Dataset cards -> registry. The cards' YAML front matter is the single source of truth for every dataset spec."""

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import yaml

VOCABULARY_CARD = "us-43d"
REDISTRIBUTION_VALUES = ("allowed", "forbidden", "unknown")
SPLIT_RULES = ("group_hash", "official_folds", "official_lists", "official_folder")
# Readers whose masks hold label values: their category keys must be integers or "r,g,b" colours.
LABEL_VALUE_READERS = ("image_mask_pairs", "ellipse", "volume", "npy", "hdf5", "video_masks")
COLOUR_KEY = re.compile(r"\d{1,3},\d{1,3},\d{1,3}")
REQUIRED_FIELDS = ("slug", "in_us43d", "redistribution", "source", "reader", "spec", "categories", "anatomy", "split")


def default_cards_dir() -> Path:
    """The package's `dataset_cards/` (in a checkout a link to the top-level `dataset_cards/`, in a wheel a copy of
    it), overridable with `ULTRASAM_CARDS_DIR` (tests, edited cards)."""
    if os.environ.get("ULTRASAM_CARDS_DIR"):
        return Path(os.environ["ULTRASAM_CARDS_DIR"])
    return Path(__file__).resolve().parents[1] / "dataset_cards"


@dataclass
class DatasetSpec:
    """One dataset: where its files are, which reader turns them into rows, how it is split and labelled."""

    slug: str
    pretty_name: str
    license: str
    index: int | None
    in_us43d: bool
    redistribution: str
    source: str
    reader: str
    spec: dict
    categories: dict  # raw key (str) -> dataset category name
    anatomy: dict  # dataset category name -> anatomy term
    split: dict
    min_area: int = 16
    class_labels: dict | None = None
    raw_folders: list = field(default_factory=list)  # folder names a raw download may have under --raw-root
    citation: str = ""
    licence_note: str = ""
    card_path: str = ""


def read_front_matter(path: Path) -> dict:
    text = Path(path).read_text(encoding="utf-8")
    if not text.startswith("---"):
        raise ValueError(f"{path}: a dataset card must start with YAML front matter between '---' lines")
    try:
        _, block, _ = text.split("---", 2)
    except ValueError:
        raise ValueError(f"{path}: front matter is not closed by a second '---' line") from None
    try:
        data = yaml.safe_load(block) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: front matter is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: front matter must be a mapping")
    return data


def load_anatomy_vocabulary(cards_dir=None) -> list:
    path = Path(cards_dir or default_cards_dir()) / VOCABULARY_CARD / "README.md"
    if not path.is_file():
        raise FileNotFoundError(f"anatomy vocabulary card not found: {path}")
    vocabulary = (read_front_matter(path).get("ultrasam") or {}).get("anatomy_vocabulary")
    if not vocabulary or not isinstance(vocabulary, list):
        raise ValueError(f"{path}: field 'ultrasam.anatomy_vocabulary' must be a non-empty list")
    return [str(term) for term in vocabulary]


def normalise_key(key) -> str:
    """255 -> "255"; "255, 0, 0" -> "255,0,0"; polygon labels stay as written."""
    text = str(key).strip()
    compact = text.replace(" ", "")
    return compact if COLOUR_KEY.fullmatch(compact) else text


def parse_card(path: Path, vocabulary, known_readers) -> DatasetSpec:
    """Parse and validate one card; every error names the card and the field."""
    path = Path(path)
    meta = read_front_matter(path)
    where = f"dataset card {path}"
    ultrasam = meta.get("ultrasam")
    if not isinstance(ultrasam, dict):
        raise ValueError(f"{where}: missing 'ultrasam' mapping")
    missing = [name for name in REQUIRED_FIELDS if name not in ultrasam]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join('ultrasam.' + name for name in missing)}")
    slug = ultrasam["slug"]
    if slug != path.parent.name:
        raise ValueError(f"{where}: ultrasam.slug {slug!r} must equal the folder name {path.parent.name!r}")
    if "license" not in meta:
        raise ValueError(f"{where}: missing field 'license'")
    if ultrasam["redistribution"] not in REDISTRIBUTION_VALUES:
        raise ValueError(f"{where}: ultrasam.redistribution must be one of {REDISTRIBUTION_VALUES}")
    reader = ultrasam["reader"]
    if reader not in known_readers:
        raise ValueError(f"{where}: ultrasam.reader {reader!r} is not one of {sorted(known_readers)}")
    if not isinstance(ultrasam["spec"], dict):
        raise ValueError(f"{where}: ultrasam.spec must be a mapping")
    unimplemented = sorted(set(ultrasam["spec"]) - known_readers[reader].options)
    if unimplemented:
        raise ValueError(
            f"{where}: ultrasam.spec option(s) {unimplemented} not implemented by reader {reader!r} "
            f"(it implements: {', '.join(sorted(known_readers[reader].options))})"
        )
    categories = ultrasam["categories"]
    if not isinstance(categories, dict) or not categories:
        raise ValueError(f"{where}: ultrasam.categories must be a non-empty mapping raw key -> category name")
    categories = {normalise_key(key): str(name) for key, name in categories.items()}
    named_masks = isinstance(ultrasam["spec"].get("mask"), dict) or ultrasam["spec"].get("mask_dict_key")
    if ultrasam["reader"] in LABEL_VALUE_READERS and not named_masks:
        bad = [key for key in categories if not (key.isdigit() or COLOUR_KEY.fullmatch(key))]
        if bad:
            raise ValueError(
                f"{where}: ultrasam.categories keys {bad} must be label values (e.g. 255) or colours 'r,g,b' for "
                f"reader {ultrasam['reader']!r} (or give spec.mask as a mapping category key -> mask file template)"
            )
    anatomy = ultrasam["anatomy"]
    if not isinstance(anatomy, dict):
        raise ValueError(f"{where}: ultrasam.anatomy must be a mapping category name -> anatomy term")
    for name in sorted(set(categories.values())):
        if name not in anatomy:
            raise ValueError(f"{where}: ultrasam.anatomy has no entry for category {name!r}")
    unknown = sorted(term for term in anatomy.values() if term not in vocabulary)
    if unknown:
        raise ValueError(f"{where}: ultrasam.anatomy term(s) {unknown} not in the us-43d anatomy_vocabulary")
    split = ultrasam["split"]
    if not isinstance(split, dict) or split.get("rule") not in SPLIT_RULES:
        raise ValueError(f"{where}: ultrasam.split.rule must be one of {SPLIT_RULES}")
    problem = split_problem(split) or table_problem(ultrasam.get("class_labels"), "column", "class_labels", paths=True)
    if problem:
        raise ValueError(f"{where}: {problem}")
    min_area = ultrasam.get("min_area", 16)
    if not isinstance(min_area, int) or min_area < 1:
        raise ValueError(f"{where}: ultrasam.min_area must be a positive integer")
    return DatasetSpec(
        slug=slug,
        pretty_name=str(meta.get("pretty_name", slug)),
        license=str(meta["license"]),
        index=ultrasam.get("index"),
        in_us43d=bool(ultrasam["in_us43d"]),
        redistribution=ultrasam["redistribution"],
        source=str(ultrasam["source"]),
        reader=reader,
        spec=ultrasam["spec"],
        categories=categories,
        anatomy={str(key): str(value) for key, value in anatomy.items()},
        split=split,
        min_area=min_area,
        class_labels=ultrasam.get("class_labels"),
        raw_folders=[str(name) for name in ultrasam.get("raw_folders", [])] or [slug],
        citation=str(ultrasam.get("citation", "")),
        licence_note=str(ultrasam.get("licence_note", "")),
        card_path=str(path),
    )


def table_problem(options, value_field: str, name: str, paths: bool = False) -> str | None:
    """What is wrong with a metadata-table mapping (tables.py), or None; `paths`: a path table is allowed too."""
    if options is None:
        return None
    if not isinstance(options, dict):
        return f"ultrasam.{name} must be a mapping"
    if paths and "paths" in options:
        return None if options.get("regex") else f"ultrasam.{name} with 'paths' needs 'regex'"
    missing = [field for field in ("file", value_field) if field not in options]
    if missing:
        hint = " (or 'paths' and 'regex' for a value in the file paths)" if paths else ""
        return f"ultrasam.{name} needs {' and '.join(repr(field) for field in missing)}{hint}"
    if not isinstance(options["file"], str):
        return f"ultrasam.{name}.file must be one path"
    return None


def split_problem(split: dict) -> str | None:
    """What is wrong with a card's split mapping (splits.py), or None."""
    rule = split["rule"]
    # `test` / `val` are fractions for group_hash; official rules use them for a fold, regex or list instead.
    fractions = {"group_hash": ("val", "test", "val_fraction"), "official_folds": ("val", "val_fraction")}
    for name in fractions.get(rule, ("val_fraction",)):
        value = split.get(name)
        fraction = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1
        if value is not None and not fraction:
            return f"ultrasam.split.{name} must be a fraction in [0, 1), got {value!r}"
    if split.get("unlisted", "error") not in ("error", "skip"):
        return f"ultrasam.split.unlisted must be 'error' or 'skip', got {split['unlisted']!r}"
    group_from = split.get("group_from")
    if group_from is not None and not (isinstance(group_from, dict) and "regex" in group_from):
        problem = table_problem(group_from, "group_column", "split.group_from")
        if problem:
            return problem
    if rule == "official_folds":
        if not split.get("test_folds"):
            return "ultrasam.split official_folds needs 'test_folds'"
        return table_problem(split, "fold_column", "split")
    if rule == "official_folder" and not isinstance(split.get("test"), str):
        return "ultrasam.split official_folder needs 'test': a regex on the raw paths"
    if rule == "official_lists":
        for part in ("test", "val"):
            needed = part == "test" or part in split
            if needed and not (isinstance(split.get(part), dict) and "file" in split[part]):
                return f"ultrasam.split official_lists needs '{part}': a table mapping with 'file'"
    return None


def load_registry(cards_dir=None, strict: bool = True) -> dict:
    """All dataset cards of `cards_dir` (default `dataset_cards/`) -> {slug: DatasetSpec}, validated.

    strict: raise one ValueError listing every invalid card; with strict=False invalid cards are left out with a
    warning (so one broken card does not block building the others).
    """
    from .readers import READERS

    cards_dir = Path(cards_dir or default_cards_dir())
    vocabulary = set(load_anatomy_vocabulary(cards_dir))
    registry, errors = {}, []
    for card in sorted(cards_dir.glob("*/README.md")):
        if card.parent.name == VOCABULARY_CARD:
            continue
        try:
            spec = parse_card(card, vocabulary, READERS)
        except ValueError as error:
            errors.append(str(error))
            continue
        registry[spec.slug] = spec
    if errors and strict:
        raise ValueError(f"{len(errors)} invalid dataset card(s):\n" + "\n".join(errors))
    for error in errors:
        warnings.warn(error, stacklevel=2)
    return registry
