"""Training data: US-43d shards -> mixed, seeded, resumable batches of preprocessed images and low-res masks.

Everything random about one sample (flip, instance subset) is drawn from
`np.random.default_rng([seed, epoch, position])`, `position` being the sample's place in its epoch: a sample is a pure
function of (seed, epoch, position), whatever the process count, worker count or resume point.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..models.image_loading import load_frames
from ..models.transforms import resized_size
from .prompt_sampling import select_instances


# --------------------------------------------------------------------------------------------------------------- loading
def _data_layer():
    try:
        from .. import data as data_layer
    except ImportError:  # pragma: no cover - the data layer is part of the package
        return None
    return data_layer


def decode_instance_mask(obj: dict) -> np.ndarray:
    data_layer = _data_layer()
    if data_layer is not None and hasattr(data_layer, "decode_instance_mask"):
        return data_layer.decode_instance_mask(obj)
    from ..data.instances import decode_instance_mask as decode

    return decode(obj)


def shard_files(data_dir, split: str, datasets=None) -> dict[str, list[str]]:
    """Parquet shards of `split` under `data_dir`, per dataset slug (builder layout `<slug>/<split>/*.parquet`)."""
    data_dir = Path(data_dir)
    files: dict[str, list[str]] = {}
    for path in sorted(glob.glob(str(data_dir / "*" / split / "*.parquet"))):
        slug = Path(path).parents[1].name
        if datasets is None or slug in datasets:
            files.setdefault(slug, []).append(path)
    return files


def load_split(data_dirs, split: str, datasets=None, streaming: bool = False, by_dataset: bool = False):
    """Rows of `split` from one or several shard folders, through `ultrasam_hf.data.load_us43d` when it exists.

    Returns one `datasets.Dataset` / `IterableDataset`, or with `by_dataset` a dict slug -> dataset (for mixing).
    """
    import datasets as hf_datasets

    data_layer = _data_layer()
    if isinstance(data_dirs, (str, os.PathLike)):
        data_dirs = [data_dirs]
    per_dataset: dict[str, list] = {}
    for data_dir in data_dirs:
        files = shard_files(data_dir, split, datasets)
        if not files:
            raise FileNotFoundError(f"no {split!r} shards under {data_dir} (expected <slug>/{split}/*.parquet)")
        for slug in sorted(files):
            if data_layer is not None and hasattr(data_layer, "load_us43d"):
                part = data_layer.load_us43d(data_dir, datasets=[slug], split=split, streaming=streaming)
            else:
                from ..data.schema import FEATURES

                part = hf_datasets.load_dataset(
                    "parquet", data_files=files[slug], split="train", features=FEATURES, streaming=streaming
                )
            per_dataset.setdefault(slug, []).append(part)
    merged = {
        slug: parts[0] if len(parts) == 1 else hf_datasets.concatenate_datasets(parts)
        for slug, parts in per_dataset.items()
    }
    if by_dataset:
        return merged
    parts = [merged[slug] for slug in sorted(merged)]
    return parts[0] if len(parts) == 1 else hf_datasets.concatenate_datasets(parts)


def mixing_weights(counts: dict[str, int], temperature: float = 1.0) -> dict[str, float]:
    """Sampling probability of each dataset, `n_i ** (1 / T)` normalised (T=1: proportional to size, T->inf: uniform),
    from the data layer when it provides `mixing_weights`."""
    data_layer = _data_layer()
    if data_layer is not None and hasattr(data_layer, "mixing_weights"):
        try:
            return dict(data_layer.mixing_weights(counts, temperature=temperature))
        except TypeError:
            pass
    powered = {slug: float(n) ** (1.0 / temperature) for slug, n in counts.items() if n > 0}
    total = sum(powered.values())
    return {slug: value / total for slug, value in powered.items()}


def scale_mixing(weights: dict[str, float], factors: dict[str, float] | None) -> dict[str, float]:
    """`weights` with each dataset's probability multiplied by its factor (`--dataset-weights`), renormalised."""
    if not factors:
        return weights
    unknown = sorted(set(factors) - set(weights))
    if unknown:
        raise ValueError(
            f"--dataset-weights names {unknown}, which are not among the training data ({sorted(weights)})"
        )
    scaled = {slug: value * factors.get(slug, 1.0) for slug, value in weights.items()}
    total = sum(scaled.values())
    return {slug: value / total for slug, value in scaled.items()}


# ---------------------------------------------------------------------------------------------------------- sampling
class MixingSampler(torch.utils.data.Sampler):
    """Seeded per-epoch sampler over a map-style dataset that yields `(epoch, position, row)` keys.

    With temperature 1 and no `factors` the epoch is a permutation of all rows (proportional mixing); otherwise rows
    are drawn with replacement with probability `weight[dataset] / count[dataset]`, the weights scaled by `factors`
    (`scale_mixing`). `set_epoch` selects the epoch; the order is a function of (seed, epoch) only, which makes
    resuming exact.
    """

    def __init__(
        self,
        row_datasets: list[str],
        seed: int = 0,
        temperature: float = 1.0,
        num_samples: int | None = None,
        factors: dict[str, float] | None = None,
    ):
        self.seed, self.temperature, self.epoch = int(seed), float(temperature), 0
        self.proportional = self.temperature == 1.0 and not factors
        self.num_rows = len(row_datasets)
        self.num_samples = int(num_samples or self.num_rows)
        counts: dict[str, int] = {}
        for slug in row_datasets:
            counts[slug] = counts.get(slug, 0) + 1
        self.weights = scale_mixing(mixing_weights(counts, temperature), factors)
        self.row_probabilities = torch.tensor([self.weights[s] / counts[s] for s in row_datasets], dtype=torch.float64)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.proportional and self.num_samples == self.num_rows:
            rows = torch.randperm(self.num_rows, generator=generator)
        else:
            rows = torch.multinomial(self.row_probabilities, self.num_samples, replacement=True, generator=generator)
        for position, row in enumerate(rows.tolist()):
            yield (self.epoch, position, row)


# ------------------------------------------------------------------------------------------------------ preprocessing
def row_key(row: dict, flip: bool = False) -> str:
    """Identity of one (image, orientation): `dataset/image_id` plus `|flip` for the mirrored image."""
    return f"{row['dataset']}/{row['image_id']}" + ("|flip" if flip else "")


def image_array(image) -> np.ndarray:
    """A row's `image` (`{"bytes"|"path"}`, PIL or array) as `HxWx3 uint8`, decoded by the package's one decoder."""
    return load_frames(image)[0]


def resize_mask(mask: np.ndarray, size: tuple[int, int], pad_to: int) -> np.ndarray:
    """Binary `(H, W)` mask -> `(pad_to, pad_to)` bool: antialiased (bilinear) resize to `size` (h, w), threshold 0.5,
    zero padding on the bottom / right like the images."""
    resized = Image.fromarray(mask.astype(np.uint8) * 255).resize((size[1], size[0]), Image.BILINEAR)
    out = np.zeros((pad_to, pad_to), dtype=bool)
    out[: size[0], : size[1]] = np.asarray(resized) >= 128
    return out


@dataclass
class ExampleBuilder:
    """Turns one row into one training example (numpy): preprocessed pixels (or a cached embedding) and up to
    `max_instances` masks on the decoder's low-resolution grid. Prompts are sampled later, on the device
    (`UltraSamTrainingModule`)."""

    image_processor: object
    input_size: int
    low_res_size: int
    seed: int = 0
    max_instances: int = 20
    flip_probability: float = 0.5
    embedding_cache: object = None
    teacher_cache: object = None  # a distillation teacher's embeddings (`teacher_embeddings`)

    def __call__(self, row: dict, epoch: int, position: int, rank_salt: int = 0) -> dict:
        rng = np.random.default_rng([self.seed, epoch, position, rank_salt])
        flip = bool(rng.random() < self.flip_probability)
        objects = row["objects"]
        chosen = select_instances(len(objects), rng, self.max_instances)
        height, width = int(row["height"]), int(row["width"])
        example = {"key": row_key(row, flip)}
        if self.embedding_cache is not None:  # `image_embeddings`, or `encoder_features` (late-encoder)
            entry = getattr(self.embedding_cache, "field", "image_embeddings")
            example[entry] = self.embedding_cache.get(example["key"])
        else:
            image = image_array(row["image"])
            height, width = image.shape[:2]
            if flip:
                image = image[:, ::-1]
            pixels = self.image_processor(images=np.ascontiguousarray(image), return_tensors="np")["pixel_values"][0]
            example["pixel_values"] = pixels.astype(np.float32)
        if self.teacher_cache is not None:
            example["teacher_embeddings"] = self.teacher_cache.get(example["key"])
        low_size = resized_size(height, width, self.low_res_size)
        low_masks = []
        for index in chosen:
            mask = decode_instance_mask(objects[index])
            if flip:
                mask = mask[:, ::-1]
            if not mask.any():
                continue
            low = resize_mask(mask, low_size, self.low_res_size)
            if low.any():  # an instance that vanishes on the loss grid has nothing to teach
                low_masks.append(low)
        example["masks"] = np.asarray(low_masks, dtype=bool).reshape(-1, self.low_res_size, self.low_res_size)
        example["valid_size"] = np.asarray(resized_size(height, width, self.input_size), dtype=np.int64)
        return example


class TrainDataset(torch.utils.data.Dataset):
    """Map-style dataset indexed by the `(epoch, position, row)` keys of `MixingSampler`."""

    def __init__(self, rows, builder: ExampleBuilder):
        self.rows, self.builder = rows, builder

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key):
        epoch, position, row = key
        example = self.builder(self.rows[int(row)], epoch, position)
        example["position"] = position
        return example


class StreamingTrainDataset(torch.utils.data.IterableDataset):
    """Iterable wrapper of a (node-split) streaming `datasets.IterableDataset`; positions count per rank."""

    def __init__(self, rows, builder: ExampleBuilder, rank: int = 0):
        self.rows, self.builder, self.rank, self.epoch = rows, builder, rank, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.rows, "set_epoch"):
            self.rows.set_epoch(epoch)

    def __iter__(self):
        for position, row in enumerate(self.rows):
            example = self.builder(row, self.epoch, position, rank_salt=self.rank + 1)
            example["position"] = position
            yield example


def rows_per_dataset(rows, limit: int | None, seed: int = 0):
    """At most `limit` rows of each dataset of `rows` (a `datasets.Dataset`), drawn with `seed`, in their original
    order; all rows when `limit` is None."""
    if limit is None:
        return rows
    if limit < 1:
        raise ValueError(f"the per-dataset limit must be >= 1, got {limit}")
    by_dataset: dict[str, list[int]] = {}
    for index, slug in enumerate(rows["dataset"]):
        by_dataset.setdefault(slug, []).append(index)
    rng = np.random.default_rng(seed)
    chosen = []
    for indices in by_dataset.values():
        chosen.extend(indices if len(indices) <= limit else rng.choice(indices, limit, replace=False).tolist())
    return rows.select(sorted(chosen))


def collate(examples: list[dict]) -> dict:
    """Stack images and concatenate the masks of all images; `image_index` maps each mask to its image."""
    batch = {"keys": [e["key"] for e in examples], "positions": torch.tensor([e["position"] for e in examples])}
    for name in ("pixel_values", "image_embeddings", "encoder_features", "teacher_embeddings"):
        if name in examples[0]:
            batch[name] = torch.stack([torch.as_tensor(np.asarray(e[name])) for e in examples]).float()
    counts = [len(e["masks"]) for e in examples]
    batch["image_index"] = torch.repeat_interleave(torch.arange(len(examples)), torch.tensor(counts, dtype=torch.long))
    batch["masks"] = torch.from_numpy(np.concatenate([e["masks"] for e in examples]))
    batch["valid_sizes"] = torch.from_numpy(np.stack([e["valid_size"] for e in examples]))[batch["image_index"]]
    return batch


__all__ = [
    "ExampleBuilder",
    "MixingSampler",
    "StreamingTrainDataset",
    "TrainDataset",
    "collate",
    "image_array",
    "load_split",
    "mixing_weights",
    "resize_mask",
    "row_key",
    "rows_per_dataset",
    "scale_mixing",
    "shard_files",
]
