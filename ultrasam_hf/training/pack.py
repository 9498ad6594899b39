"""Training packs: a split of built shards, pre-resized to the model's input size, in one file that lives on the
accelerator during training.

A pack holds, per image, the processor's resized (not yet normalised, not padded) uint8 pixels encoded as PNG
(lossless) or WebP (compact, for moving a pack to a remote GPU), and per instance its mask on the decoder's low-res
grid, bit-packed. `ResidentBatches` decodes the whole pack once onto the device; each batch is then index
selection, flips, normalisation and mask unpacking on the device, with no data loader and no host round trip.
Normalisation and padding reproduce `UltraSamImageProcessor` exactly (tested), so a model trained on a pack sees what
inference feeds it.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..models.transforms import resized_size
from .data import MixingSampler, decode_instance_mask, image_array, load_split, resize_mask

PACK_FORMAT = "ultrasam-training-pack/1"
CODECS = ("png", "webp")


def _encode(image: np.ndarray, codec: str, quality: int) -> tuple[bytes, int]:
    """HxWx3 uint8 -> (encoded bytes, channels); grey images are stored as one channel."""
    grey = bool((image[..., 0] == image[..., 1]).all() and (image[..., 0] == image[..., 2]).all())
    picture = Image.fromarray(image[..., 0] if grey else image)
    buffer = io.BytesIO()
    if codec == "png":
        picture.save(buffer, format="PNG", compress_level=6)
    else:
        picture.save(buffer, format="WEBP", quality=int(quality))
    return buffer.getvalue(), 1 if grey else 3


def _decode(data: bytes, channels: int) -> np.ndarray:
    picture = Image.open(io.BytesIO(data))
    array = np.asarray(picture.convert("L" if channels == 1 else "RGB"))
    return np.repeat(array[..., None], 3, axis=-1) if channels == 1 else array


def build_pack(
    data_dirs,
    out_path,
    image_processor,
    low_res_size: int,
    *,
    split: str = "train",
    datasets=None,
    codec: str = "png",
    quality: int = 90,
    max_images_per_dataset: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Write the `split` rows of `data_dirs` as one pack file (`.npz`); returns its summary (also stored inside).

    `max_images_per_dataset` keeps a seeded random subset of each larger dataset (to fit a size budget).
    """
    from tqdm.auto import tqdm

    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")
    input_size = int(image_processor.size["longest_edge"])
    rows = load_split(data_dirs, split, datasets)
    slugs = list(rows["dataset"])
    keep = np.arange(len(slugs))
    if max_images_per_dataset:
        rng = np.random.default_rng(seed)
        chosen = []
        for slug in sorted(set(slugs)):
            indices = np.flatnonzero(np.asarray(slugs) == slug)
            if len(indices) > max_images_per_dataset:
                indices = np.sort(rng.choice(indices, max_images_per_dataset, replace=False))
            chosen.append(indices)
        keep = np.sort(np.concatenate(chosen))
    names = sorted({slugs[i] for i in keep})
    encoded, channels, valid, low_valid, image_dataset, keys = [], [], [], [], [], []
    mask_bits, mask_image = [], []
    for index in tqdm(keep.tolist(), desc=f"pack {split}", disable=not progress):
        row = rows[int(index)]
        image = image_array(row["image"])
        height, width = image.shape[:2]
        resized = image_processor(
            images=image, do_rescale=False, do_normalize=False, do_pad=False, return_tensors="np"
        )["pixel_values"][0]
        low_size = resized_size(height, width, low_res_size)
        masks = []
        for obj in row["objects"]:
            mask = decode_instance_mask(obj)
            if mask.any():
                low = resize_mask(mask, low_size, low_res_size)
                if low.any():
                    masks.append(low)
        if not masks:
            continue  # nothing to learn from this image
        data, image_channels = _encode(
            np.ascontiguousarray(resized.transpose(1, 2, 0)).astype(np.uint8), codec, quality
        )
        encoded.append(np.frombuffer(data, dtype=np.uint8))
        channels.append(image_channels)
        valid.append(resized.shape[1:])
        low_valid.append(low_size)
        image_dataset.append(names.index(row["dataset"]))
        keys.append(f"{row['dataset']}/{row['image_id']}")
        for mask in masks:
            mask_bits.append(np.packbits(mask.reshape(-1)))
            mask_image.append(len(encoded) - 1)
    if not encoded:
        raise ValueError(f"no image with a usable instance in the {split!r} split of {data_dirs}")
    summary = {
        "format": PACK_FORMAT,
        "split": split,
        "input_size": input_size,
        "low_res_size": int(low_res_size),
        "preprocessing": getattr(image_processor, "preprocessing", "sam"),
        "codec": codec if codec == "png" else f"{codec}:{quality}",
        "datasets": names,
        "images": {name: image_dataset.count(i) for i, name in enumerate(names)},
        "instances": len(mask_image),
        "keys": keys,
    }
    offsets = np.cumsum([0] + [len(e) for e in encoded])
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "wb") as handle:
        np.savez_compressed(
            handle,
            image_bytes=np.concatenate(encoded),
            image_offsets=offsets.astype(np.int64),
            image_channels=np.asarray(channels, np.uint8),
            valid_sizes=np.asarray(valid, np.int32),
            low_valid_sizes=np.asarray(low_valid, np.int32),
            image_dataset=np.asarray(image_dataset, np.int32),
            mask_bits=np.stack(mask_bits),
            mask_image=np.asarray(mask_image, np.int32),
            summary=np.frombuffer(json.dumps(summary).encode(), dtype=np.uint8),
        )
    return summary


def read_pack_summary(path) -> dict:
    with np.load(path, allow_pickle=False) as pack:
        return json.loads(pack["summary"].tobytes())


def normalize_pixels(images: torch.Tensor, valid_sizes: torch.Tensor, image_processor) -> torch.Tensor:
    """`(B, 3, S, S)` uint8 resized images (zero outside `valid_sizes` (B, 2)) -> the processor's `pixel_values`:
    `sam`: rescale and ImageNet mean/std; `litemedsam`: per-image min-max over the image; then zero padding."""
    size = images.shape[-1]
    grid = torch.arange(size, device=images.device)
    inside = (grid[None, :, None] < valid_sizes[:, 0, None, None]) & (
        grid[None, None, :] < valid_sizes[:, 1, None, None]
    )
    inside = inside[:, None]
    pixels = images.float()
    if getattr(image_processor, "preprocessing", "sam") == "litemedsam":
        low = torch.where(inside, pixels, torch.inf).amin(dim=(1, 2, 3), keepdim=True)
        high = torch.where(inside, pixels, -torch.inf).amax(dim=(1, 2, 3), keepdim=True)
        pixels = (pixels - low) / (high - low).clamp(min=1e-8)
    elif image_processor.do_rescale:
        pixels = pixels * float(image_processor.rescale_factor)
    if image_processor.do_normalize:
        mean = torch.tensor(image_processor.image_mean, device=images.device, dtype=pixels.dtype)[None, :, None, None]
        std = torch.tensor(image_processor.image_std, device=images.device, dtype=pixels.dtype)[None, :, None, None]
        pixels = (pixels - mean) / std
    return torch.where(inside, pixels, torch.zeros((), device=images.device))


def _mirror(tensor: torch.Tensor, widths: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror each `(..., H, W)` item left-right inside its valid width where `flip` is set (padding stays right)."""
    size = tensor.shape[-1]
    columns = torch.arange(size, device=tensor.device)[None, :].expand(tensor.shape[0], -1)
    mirrored = torch.where(columns < widths[:, None], widths[:, None] - 1 - columns, columns)
    columns = torch.where(flip[:, None], mirrored, columns)
    index = columns.view(tensor.shape[0], *([1] * (tensor.ndim - 2)), size).expand(tensor.shape)
    return tensor.gather(-1, index)


class ResidentBatches:
    """A pack decoded onto `device`, served as training batches (`UltraSamTrainingModule`'s batch format).

    Image order comes from `MixingSampler` (seeded per epoch, temperature mixing over the pack's datasets, scaled by
    `factors`); flips and instance subsets from a generator on the device. `skip(n)` fast-forwards an epoch (resume).
    """

    def __init__(
        self,
        path,
        image_processor,
        device,
        *,
        batch_size: int,
        seed: int = 0,
        temperature: float = 1.0,
        factors: dict[str, float] | None = None,
        max_instances: int = 20,
        flip_probability: float = 0.5,
        rank: int = 0,
        world_size: int = 1,
        datasets=None,
        num_threads: int = 8,
    ):
        self.image_processor, self.device = image_processor, torch.device(device)
        self.batch_size, self.max_instances, self.flip_probability = (
            int(batch_size),
            int(max_instances),
            flip_probability,
        )
        self.rank, self.world_size = int(rank), int(world_size)
        with np.load(path, allow_pickle=False) as pack:
            arrays = {name: pack[name] for name in pack.files}
        self.summary = json.loads(arrays["summary"].tobytes())
        if self.summary.get("format") != PACK_FORMAT:
            raise ValueError(f"{path} is not a training pack ({PACK_FORMAT})")
        size = self.summary["input_size"]
        keep = np.arange(len(arrays["image_dataset"]))
        if datasets:
            unknown = set(datasets) - set(self.summary["datasets"])
            if unknown:
                raise ValueError(f"datasets {sorted(unknown)} are not in the pack {path} ({self.summary['datasets']})")
            wanted = [self.summary["datasets"].index(slug) for slug in datasets]
            keep = np.flatnonzero(np.isin(arrays["image_dataset"], wanted))
        offsets, data = arrays["image_offsets"], arrays["image_bytes"]

        def decode(index):
            return _decode(data[offsets[index] : offsets[index + 1]].tobytes(), int(arrays["image_channels"][index]))

        images = np.zeros((len(keep), size, size, 3), dtype=np.uint8)
        with ThreadPoolExecutor(num_threads) as pool:
            for position, image in enumerate(pool.map(decode, keep.tolist())):
                images[position, : image.shape[0], : image.shape[1]] = image
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(self.device)
        self.valid_sizes = torch.from_numpy(arrays["valid_sizes"][keep].astype(np.int64)).to(self.device)
        self.low_valid_sizes = torch.from_numpy(arrays["low_valid_sizes"][keep].astype(np.int64)).to(self.device)
        remap = np.full(len(arrays["image_dataset"]), -1)
        remap[keep] = np.arange(len(keep))
        instance_image = remap[arrays["mask_image"]]
        instances = np.flatnonzero(instance_image >= 0)
        self.mask_bits = torch.from_numpy(arrays["mask_bits"][instances]).to(self.device)
        counts = np.bincount(instance_image[instances], minlength=len(keep))
        self.instance_start = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)[:-1]])).to(self.device)
        self.instance_count = torch.from_numpy(counts).to(self.device)
        self.most_instances = max(int(counts.max()), 1)
        self.low_res = self.summary["low_res_size"]
        self.image_datasets = [self.summary["datasets"][i] for i in arrays["image_dataset"][keep]]
        self.keys = [self.summary["keys"][i] for i in keep]
        self.sampler = MixingSampler(self.image_datasets, seed=seed, temperature=temperature, factors=factors)
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed) * 7919 + self.rank)
        self.epoch, self._skip = 0, 0
        self._shifts = torch.arange(7, -1, -1, device=self.device, dtype=torch.uint8)

    def __len__(self) -> int:
        batches = -(-len(self.sampler) // self.batch_size)
        return len(range(self.rank, batches, self.world_size))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.sampler.set_epoch(epoch)

    def skip(self, batches: int) -> "ResidentBatches":
        self._skip = int(batches)
        return self

    def __iter__(self):
        keys = list(self.sampler)
        starts = range(0, len(keys), self.batch_size)
        skip, self._skip = self._skip, 0
        for number, start in enumerate(list(starts)[self.rank :: self.world_size]):
            if number < skip:
                continue
            chunk = keys[start : start + self.batch_size]
            yield self.batch([row for _, _, row in chunk], [position for _, position, _ in chunk])

    def batch(self, rows: list[int], positions) -> dict:
        """The training batch of pack images `rows` (indices)."""
        images = torch.tensor(rows, device=self.device)
        count = images.shape[0]
        flip = torch.rand(count, generator=self.generator, device=self.device) < self.flip_probability
        valid = self.valid_sizes[images]
        pixels = _mirror(self.images[images], valid[:, 1], flip)
        pixel_values = normalize_pixels(pixels, valid, self.image_processor)
        # a random subset of at most max_instances instances per image: rank instances by a random key
        per_image = self.instance_count[images]
        longest = self.most_instances
        slots = torch.arange(longest, device=self.device)[None, :].expand(count, -1)
        present = slots < per_image[:, None]
        order = torch.rand(count, longest, generator=self.generator, device=self.device).masked_fill(~present, 2.0)
        rank = order.argsort(dim=1).argsort(dim=1)
        chosen = present & (rank < self.max_instances) if self.max_instances > 0 else present
        image_index, slot = chosen.nonzero(as_tuple=True)
        instance = self.instance_start[images][image_index] + slot
        bits = self.mask_bits[instance]
        masks = ((bits[..., None] >> self._shifts) & 1).bool().reshape(-1, self.low_res, self.low_res)
        masks = _mirror(masks, self.low_valid_sizes[images][image_index, 1], flip[image_index])
        return {
            "keys": [self.keys[i] for i in rows],
            "positions": torch.as_tensor(positions),
            "pixel_values": pixel_values,
            "masks": masks,
            "image_index": image_index,
            "valid_sizes": valid[image_index],
        }


__all__ = ["CODECS", "PACK_FORMAT", "ResidentBatches", "build_pack", "normalize_pixels", "read_pack_summary"]
