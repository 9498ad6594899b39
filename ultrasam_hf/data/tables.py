"""Metadata tables of a release (CSV/TXT) -> {item key: value}, for groups, official folds and class labels.

Table options (in a card's split / class_labels / group_from mapping):
    file: path relative to the raw root; sep (default ","); header (default true; false -> columns are 0, 1, ...)
    id_column: column holding the item key; strip_suffix: true to drop a file extension from the ids
    column / group_column / fold_column: the value column; values: optional {raw value: label} mapping
"""

import csv
from pathlib import Path


def read_table(root: Path, options: dict, value_column_field: str) -> dict:
    path = Path(root) / options["file"]
    if not path.is_file():
        raise FileNotFoundError(f"metadata table {options['file']!r} not found in {root}")
    sep = options.get("sep", ",")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle, delimiter=" " if sep == "space" else sep, skipinitialspace=True))
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


def column_index(header: list, column, path: Path) -> int:
    if isinstance(column, int) and not isinstance(header[0], str):
        return column
    if column not in header:
        raise ValueError(f"{path}: no column {column!r} (columns: {header})")
    return header.index(column)
