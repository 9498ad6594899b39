"""Reading built shards back: `load_us43d` (local build folder or Hub repo), mixing weights and multi-node sharding."""

from pathlib import Path

import numpy as np
from datasets import interleave_datasets, load_dataset
from datasets.distributed import split_dataset_by_node

from .schema import FEATURES, SPLITS


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
        files = {name: sorted(str(f) for slug in slugs for f in (local / slug / name).glob("*.parquet")) for name in splits}
    else:
        if not datasets:
            raise ValueError("name the datasets to load from a Hub repo, e.g. datasets=['bus-bra', 'hc18']")
        files = {name: [f"hf://datasets/{path_or_repo_id}/{slug}/{name}/*.parquet" for slug in sorted(datasets)] for name in splits}
    return {name: paths for name, paths in files.items() if paths}


def load_us43d(path_or_repo_id, datasets=None, split=None, streaming: bool = False, **kwargs):
    """Load built US-43d shards as a `datasets` object with `FEATURES` rows.

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


def interleave_by_dataset(by_dataset: dict, temperature: float = 1.0, seed: int = 0, counts: dict | None = None, stopping_strategy: str = "all_exhausted"):
    """Mix per-dataset `Dataset`s / `IterableDataset`s with temperature-scaled probabilities.

    counts: rows per dataset (needed for streaming datasets: take them from the build manifest); default len(ds).
    """
    counts = counts or {name: len(ds) for name, ds in by_dataset.items()}
    weights = mixing_weights(counts, temperature)
    names = list(weights)
    return interleave_datasets([by_dataset[name] for name in names], probabilities=[weights[name] for name in names], seed=seed, stopping_strategy=stopping_strategy)


def shard_for_node(dataset, rank: int, world_size: int):
    """The part of `dataset` this process trains on (whole shards when they divide evenly, else every world_size-th row)."""
    return split_dataset_by_node(dataset, rank=rank, world_size=world_size)
