"""Reading built shards back: `load_us43d` (local build folder or Hub repo), `load_rows` (a local build, checked, as
evaluation and the downstream tasks read it), `decode_row`, mixing weights and multi-node sharding. Every reader of
shards goes through this module."""

from pathlib import Path

import numpy as np
from datasets import concatenate_datasets, interleave_datasets, load_dataset
from datasets.distributed import split_dataset_by_node

from ..models.image_loading import load_frames
from .instances import decode_instance_mask
from .schema import FEATURES, SPLITS, anatomy_name


def data_files(path_or_repo_id: str, datasets=None, split=None) -> dict:
    """{split: [parquet files or hf:// patterns]} for the chosen datasets (all built ones by default)."""
    splits = [split] if isinstance(split, str) else list(split or SPLITS)
    unknown = [name for name in splits if name not in SPLITS]
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; splits are {SPLITS}")
    local = Path(path_or_repo_id)
    if local.is_dir():
        slugs = sorted(datasets or [p.name for p in local.iterdir() if p.is_dir() and not p.name.startswith(".")])
        missing = [slug for slug in slugs if not (local / slug).is_dir()]
        if missing:
            raise ValueError(f"dataset(s) {missing} not built in {local}")
        files = {
            name: sorted(str(f) for slug in slugs for f in (local / slug / name).glob("*.parquet")) for name in splits
        }
    else:
        if not datasets:
            raise ValueError("name the datasets to load from a Hub repo, e.g. datasets=['bus-bra', 'hc18']")
        files = {
            name: [f"hf://datasets/{path_or_repo_id}/{slug}/{name}/*.parquet" for slug in sorted(datasets)]
            for name in splits
        }
    return {name: paths for name, paths in files.items() if paths}


def load_us43d(path_or_repo_id, datasets=None, split=None, streaming: bool = False, **kwargs):
    """Load built US-43d shards as a `datasets` object with `FEATURES` rows (`anatomy` as its ClassLabel id:
    `FEATURES["objects"].feature["anatomy"].int2str`, or `decode_row`, gives the term).

    Args:
        path_or_repo_id: a build folder (`ultrasam data build --out`) or a Hub dataset repo id.
        datasets: slugs to load (default: every dataset of a local build).
        split: "train", "validation", "test" (returns a Dataset) or None (a DatasetDict of the splits present).
        streaming: return an IterableDataset(Dict) that reads shards lazily.

    Example:
        >>> train = load_us43d("us43d_build", datasets=["bus-bra", "hc18"], split="train")
        >>> masks = [decode_instance_mask(obj) for obj in train[0]["objects"]]
    """
    files = data_files(str(path_or_repo_id), datasets, split)
    if not files:
        raise ValueError(f"no shards found in {path_or_repo_id} for datasets={datasets} split={split}")
    loaded = load_dataset("parquet", data_files=files, features=FEATURES, streaming=streaming, **kwargs)
    return loaded[split] if isinstance(split, str) else loaded


def built_datasets(data) -> list:
    """Dataset slugs built in a local build folder (sub-folders holding at least one split folder of shards)."""
    root = Path(data)
    return sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and any(p.glob("*/*.parquet"))
    )


def load_rows(data, datasets=None, split="test", limit: int | None = None, image_ids=None) -> dict:
    """`{dataset slug: datasets.Dataset}` of the rows of a local build folder (`ultrasam data build --out`).

    Args:
        data: the build folder.
        datasets: slugs (default: every built dataset).
        split: one split name, which every chosen dataset must have, or a list of splits, concatenated in that
            order, those a dataset lacks left out.
        limit: keep the first `limit` rows of each dataset (after the `image_ids` filter).
        image_ids: keep only these images (of any of the splits).

    Raises FileNotFoundError for a missing folder and ValueError, naming what exists, for an unknown dataset or
    split, or a selection with no rows. Rows are decoded lazily; `decode_row` decodes pixels and masks.
    """
    root = Path(data)
    if not root.is_dir():
        raise FileNotFoundError(
            f"data folder {root} does not exist (build it with `ultrasam data build ... --out {root}`)"
        )
    splits = [split] if isinstance(split, str) else list(split)
    unknown = [name for name in splits if name not in SPLITS]
    if unknown or not splits:
        raise ValueError(f"unknown split {', '.join(map(repr, unknown)) or '(none given)'}; splits are {SPLITS}")
    available = built_datasets(root)
    if not available:
        raise ValueError(f"no built dataset in {root}: expected <slug>/<split>/*.parquet (ultrasam data build --out)")
    chosen = list(dict.fromkeys([datasets] if isinstance(datasets, str) else datasets or available))
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown} in {root}; built datasets there: {available}")
    wanted = None if image_ids is None else set(image_ids)
    rows = {}
    for name in chosen:
        present = sorted(p.name for p in (root / name).iterdir() if p.is_dir() and any(p.glob("*.parquet")))
        if isinstance(split, str) and split not in present:
            raise ValueError(f"dataset {name!r} has no {split!r} split in {root}; it has {present}")
        parts = [load_us43d(root, datasets=[name], split=part) for part in splits if part in present]
        if not parts:
            raise ValueError(f"dataset {name!r} has none of the splits {splits} in {root}; it has {present}")
        table = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
        if wanted is not None:
            table = table.select([i for i, image_id in enumerate(table["image_id"]) if image_id in wanted])
        elif len(table) == 0:
            raise ValueError(f"the {split!r} split of {name!r} in {root} is empty")
        rows[name] = table.select(range(min(limit, len(table)))) if limit else table
    return rows


def decode_row(row: dict) -> dict:
    """`row` with its `image` decoded to `HxWx3 uint8` (`load_frames`, the pixels inference sees), and in each of its
    `objects` a bool `HxW` `mask` (`decode_instance_mask`) and the `anatomy` term (a name, not the ClassLabel id);
    every other field as stored."""
    objects = [
        {**obj, "mask": decode_instance_mask(obj), "anatomy": anatomy_name(obj.get("anatomy"))}
        for obj in row.get("objects") or []
    ]
    return {**row, "image": load_frames(row["image"])[0], "objects": objects}


def decoded_rows(data, dataset: str, split=SPLITS, limit: int | None = None, image_ids=None) -> list:
    """The rows of one dataset of a build folder (`load_rows`, every split by default), decoded (`decode_row`:
    `anatomy` as the term)."""
    return [decode_row(row) for row in load_rows(data, [dataset], split, limit, image_ids)[dataset]]


def mixing_weights(counts: dict, temperature: float = 1.0) -> dict:
    """Sampling probability per dataset, p_i proportional to n_i ** (1 / temperature).

    temperature 1 samples in proportion to size, larger values flatten towards uniform (small datasets are seen more).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    names = sorted(name for name, count in counts.items() if count > 0)
    if not names:
        raise ValueError("mixing_weights needs at least one dataset with a positive count")
    scaled = np.array([counts[name] for name in names], dtype=np.float64) ** (1.0 / temperature)
    return dict(zip(names, (scaled / scaled.sum()).tolist()))


def interleave_by_dataset(
    by_dataset: dict,
    temperature: float = 1.0,
    seed: int = 0,
    counts: dict | None = None,
    stopping_strategy: str = "all_exhausted",
):
    """Mix per-dataset `Dataset`s / `IterableDataset`s with temperature-scaled probabilities.

    counts: rows per dataset (needed for streaming datasets: take them from the build manifest); default len(ds).
    """
    counts = counts or {name: len(ds) for name, ds in by_dataset.items()}
    weights = mixing_weights(counts, temperature)
    names = list(weights)
    return interleave_datasets(
        [by_dataset[name] for name in names],
        probabilities=[weights[name] for name in names],
        seed=seed,
        stopping_strategy=stopping_strategy,
    )


def shard_for_node(dataset, rank: int, world_size: int):
    """The part of `dataset` this process trains on (whole shards when they divide evenly, else every
    world_size-th row)."""
    return split_dataset_by_node(dataset, rank=rank, world_size=world_size)
