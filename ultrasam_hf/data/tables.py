"""Metadata tables of a release (CSV/TXT) -> {item key: value}, for groups, official folds and class labels.

Table options (in a card's split / class_labels / group_from mapping):
    file: path relative to the raw root, or a list of such paths read one after the other (MMOTU train_cls.txt and
          val_cls.txt); sep (default ","; "space" for whitespace); header (default true; false: columns are 0, 1, ..)
    id_column: column holding the item key; strip_suffix: true to drop a file extension from the ids
    column / group_column / fold_column: the value column; values: optional {raw value: label} mapping
Or, for a value that the release encodes in its folder names (BUSI benign/ malignant/), a path table:
    paths: glob(s) of raw files; regex: its first group on a file's path is the value; key: template of the item key
          over the path's fields (default "{stem}", the readers' default key), id_regex: named groups for `key`
"""

import csv
import re
from pathlib import Path


def read_table(root: Path, options: dict, value_column_field: str) -> dict:
    if "paths" in options:
        return read_path_table(root, options)
    table = {}
    for name in options["file"] if isinstance(options["file"], list) else [options["file"]]:
        table.update(read_one_table(root, name, options, value_column_field))
    return table


def read_one_table(root: Path, name: str, options: dict, value_column_field: str) -> dict:
    path = Path(root) / name
    if not path.is_file():
        raise FileNotFoundError(f"metadata table {name!r} not found in {root}")
    sep = options.get("sep", ",")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        if sep == "space":
            rows = [line.split() for line in handle if line.strip()]
        else:
            rows = list(csv.reader(handle, delimiter=sep, skipinitialspace=True))
    if options.get("header", True):
        header, rows = rows[0], rows[1:]
    else:
        header = list(range(max(len(row) for row in rows)))
    id_index = column_index(header, options.get("id_column", 0), path)
    value_index = column_index(header, options[value_column_field], path)
    values = options.get("values") or {}
    table = {}
    for row in rows:
        if len(row) <= max(id_index, value_index):
            continue
        key = row[id_index].strip()
        if options.get("strip_suffix"):
            key = Path(key).stem
        raw = row[value_index].strip()
        table[key] = str(values.get(raw, values.get(int(raw) if raw.isdigit() else raw, raw)))
    return table


def read_path_table(root: Path, options: dict) -> dict:
    from .readers.base import SkipItem, fill_template, glob_relative, path_fields

    pattern, values = re.compile(options["regex"]), options.get("values") or {}
    table = {}
    for path in glob_relative(root, options["paths"]):
        match = pattern.search(path)
        try:
            fields = path_fields(path, options.get("id_regex"))
        except SkipItem:  # not an item's file: the reader records it
            continue
        if match:
            table[fill_template(options.get("key", "{stem}"), fields)] = str(
                values.get(match.group(1), match.group(1))
            )
    return table


def column_index(header: list, column, path: Path) -> int:
    if isinstance(column, int) and not isinstance(header[0], str):
        return column
    if column not in header:
        raise ValueError(f"{path}: no column {column!r} (columns: {header})")
    return header.index(column)
