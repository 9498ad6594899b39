"""Patient- or scan-level splits: official ones where the release has them, else a seeded hash of the group id.

Rules (card `ultrasam.split`):
    group_hash:      {seed, val, test}: each group lands in test / validation / train by a hash of (seed, dataset,
                     group), so a group never spans splits and adding data never moves existing groups
    official_folds:  {file, id_column, fold_column, test_folds, val_folds?, val?}: the release's fold table
                     (BUS-BRA 5-fold-cv.csv: test = fold 1); the rest is train, or split train/validation by hash
    official_lists:  {test: table, val?: table, val_fraction?}: items whose key a release list names (a table as in
                     tables.py, e.g. {file: OTU_2d/val_cls.txt, sep: space, header: false, strip_suffix: true}) are
                     test / validation; the rest is train, or split train/validation by hash
    official_folder: {test: regex, val?: regex, val_fraction?}: a regex on the item's raw paths (USGRA test/)
Groups (`group_from`): {file, id_column, group_column} table, {regex} with one capture group on the item key,
or nothing: every item is its own group (say so in the card).
An item the group or fold table does not list stops the dataset's build with an error naming it, unless the card
says `unlisted: skip`: then it is recorded as a skip ("not in release table: ...") and the rest is built.
"""

import hashlib
import re

from .tables import read_table


def group_hash_fraction(seed, dataset: str, group: str) -> float:
    digest = hashlib.sha256(f"{seed}/{dataset}/{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def hash_split(seed, dataset: str, group: str, val: float, test: float) -> str:
    fraction = group_hash_fraction(seed, dataset, group)
    if fraction < test:
        return "test"
    if fraction < test + val:
        return "validation"
    return "train"


def unlisted_items(root, items: list, split: dict) -> dict:
    """-> {item id: reason} for items missing from the release's group table or official fold table."""
    unlisted = {}
    tables = [(split.get("group_from"), "group_column", "group")]
    if split["rule"] == "official_folds":
        tables.append((split, "fold_column", "fold"))
    for source, column, what in tables:
        if not source or "file" not in source:
            continue
        table = read_table(root, source, column)
        for item in items:
            if item.key not in table and not item.skip_reason and item.item_id not in unlisted:
                unlisted[item.item_id] = f"not in release table: {source['file']} has no {what} for {item.key!r}"
    return unlisted


def assign_groups(root, items: list, split: dict) -> dict:
    """-> {item id: group id}. Raises ValueError naming the item when its group cannot be found."""
    source = split.get("group_from")
    if not source:
        return {item.item_id: item.item_id for item in items}
    if "regex" in source:
        pattern = re.compile(source["regex"])
        groups = {}
        for item in items:
            match = pattern.search(item.key)
            groups[item.item_id] = match.group(1) if match else item.key
        return groups
    table = read_table(root, source, "group_column")
    missing = [item.key for item in items if item.key not in table and not item.skip_reason]
    if missing:
        raise ValueError(f"{source['file']}: no group for {len(missing)} item(s), e.g. {missing[:3]}")
    return {item.item_id: table.get(item.key, item.key) for item in items}


def assign_splits(root, dataset: str, items: list, groups: dict, split: dict) -> dict:
    """-> {item id: split name}."""
    rule, seed = split["rule"], split.get("seed", 0)
    # a fraction for group_hash / official_folds; official_folder / official_lists name a folder or list with `val`
    val = float(split.get("val", 0.0)) if rule in ("group_hash", "official_folds") else 0.0
    result = {}
    if rule == "group_hash":
        test = float(split.get("test", 0.0))
        for item in items:
            result[item.item_id] = hash_split(seed, dataset, groups[item.item_id], val, test)
    elif rule == "official_folds":
        folds = read_table(root, split, "fold_column")
        test_folds = {str(value) for value in split.get("test_folds", [])}
        val_folds = {str(value) for value in split.get("val_folds", [])}
        for item in items:
            fold = folds.get(item.key)
            if fold is None and not item.skip_reason:
                raise ValueError(f"{split['file']}: no fold for item {item.key!r}")
            if fold in test_folds:
                result[item.item_id] = "test"
            elif fold in val_folds:
                result[item.item_id] = "validation"
            else:
                result[item.item_id] = hash_split(seed, dataset, groups[item.item_id], val, 0.0)
    elif rule in ("official_folder", "official_lists"):
        listed = official_listing(root, items, split)
        for item in items:
            if "test" in listed(item):
                result[item.item_id] = "test"
            elif "val" in listed(item):
                result[item.item_id] = "validation"
            else:
                fraction = float(split.get("val_fraction", val))
                result[item.item_id] = hash_split(seed, dataset, groups[item.item_id], fraction, 0.0)
    else:
        raise ValueError(f"unknown split rule {rule!r}")
    return result


def official_listing(root, items: list, split: dict):
    """-> function item -> the official parts ("test", "val") that list it, by folder regex or by release list."""
    if split["rule"] == "official_folder":
        patterns = {part: re.compile(split[part]) for part in ("test", "val") if split.get(part)}
        return lambda item: {
            part for part, regex in patterns.items() if any(regex.search(path) for path in item.files)
        }
    tables = {part: {"id_column": 0, "column": 0, **split[part]} for part in ("test", "val") if split.get(part)}
    keys = {part: set(read_table(root, options, "column")) for part, options in tables.items()}
    return lambda item: {part for part, names in keys.items() if item.key in names}


def check_group_leakage(groups: dict, splits: dict) -> list:
    """Groups found in more than one split (an official split that cuts through a patient): reported in the manifest."""
    seen = {}
    for item_id, group in groups.items():
        seen.setdefault(group, set()).add(splits[item_id])
    return sorted(group for group, names in seen.items() if len(names) > 1)
