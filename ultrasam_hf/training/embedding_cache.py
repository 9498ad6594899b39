"""Precomputed image embeddings for frozen-encoder training.

`build_embedding_cache` runs `model.get_image_embeddings` once per (image, orientation) and writes safetensors shards
into a cache folder; `EmbeddingCache` reads one embedding by key (`dataset/image_id`, `|flip` for the mirrored image).
Prompt-encoder / mask-decoder training then never runs the encoder: on a CPU it is the difference between seconds and
milliseconds per image.

Flips: by default both orientations are cached (twice the cache time and size) so that random horizontal flips stay
on; `--no-cache-flips` caches only the original orientation and training then turns flips off.

Layout of the folder: `meta.json` (fingerprint of the encoder weights + preprocessing, dtype, orientations),
`index-<rank>.json` (key -> shard file), `embeddings-<rank>-<n>.safetensors`, `complete-<rank>` markers. A folder whose
fingerprint differs from the model's is rebuilt; a complete one is reused. Each process of a multi-process run embeds
its own slice of the rows.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .data import image_array, row_key

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def encoder_fingerprint(model, image_processor, dtype: str, flips: bool) -> str:
    """sha256 of the vision encoder's weights, the model config's input geometry and the preprocessing."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.vision_encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    processor_config = image_processor.to_dict() if hasattr(image_processor, "to_dict") else {}
    digest.update(json.dumps(processor_config, sort_keys=True, default=str).encode())
    digest.update(f"{dtype}|{flips}".encode())
    return digest.hexdigest()


class EmbeddingCache:
    """Read access to a cache folder: `cache.get(key)` -> `(C, h, w)` float32 tensor."""

    def __init__(self, cache_dir):
        self.cache_dir = Path(cache_dir)
        self.meta = json.loads((self.cache_dir / "meta.json").read_text())
        self.index: dict[str, str] = {}
        for path in sorted(glob.glob(str(self.cache_dir / "index-*.json"))):
            self.index.update(json.loads(Path(path).read_text()))
        self._handles: dict[str, object] = {}

    @property
    def flips(self) -> bool:
        return bool(self.meta.get("flips", False))

    def __contains__(self, key: str) -> bool:
        return key in self.index

    def __len__(self) -> int:
        return len(self.index)

    def get(self, key: str) -> torch.Tensor:
        if key not in self.index:
            raise KeyError(f"{key!r} is not in the embedding cache {self.cache_dir} ({len(self.index)} entries)")
        shard = self.index[key]
        handle = self._handles.get(shard)
        if handle is None:
            handle = self._handles[shard] = safe_open(str(self.cache_dir / shard), framework="pt")
        return handle.get_tensor(key).float()

    def __getstate__(self):  # dataloader workers reopen their own handles
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state


def _is_complete(cache_dir: Path, fingerprint: str, num_processes: int) -> bool:
    meta_path = cache_dir / "meta.json"
    if not meta_path.is_file():
        return False
    meta = json.loads(meta_path.read_text())
    if meta.get("fingerprint") != fingerprint or meta.get("num_processes") != num_processes:
        return False
    return all((cache_dir / f"complete-{rank}").is_file() for rank in range(num_processes))


@torch.no_grad()
def build_embedding_cache(
    model,
    rows,
    image_processor,
    cache_dir,
    *,
    flips: bool = True,
    dtype: str = "float16",
    batch_size: int = 8,
    shard_megabytes: float = 512,
    process_index: int = 0,
    num_processes: int = 1,
    wait_for_everyone=None,
    progress: bool = True,
) -> EmbeddingCache:
    """Embed every row of `rows` (a map-style dataset, or any list of rows), in both orientations with `flips`.

    Returns the `EmbeddingCache`. `wait_for_everyone` (e.g. `accelerator.wait_for_everyone`) synchronises processes.
    """
    from tqdm.auto import tqdm

    cache_dir = Path(cache_dir)
    barrier = wait_for_everyone or (lambda: None)
    fingerprint = encoder_fingerprint(model, image_processor, dtype, flips)
    if _is_complete(cache_dir, fingerprint, num_processes):
        barrier()
        return EmbeddingCache(cache_dir)
    if process_index == 0:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for stale in [
            *cache_dir.glob("embeddings-*.safetensors"),
            *cache_dir.glob("index-*.json"),
            *cache_dir.glob("complete-*"),
        ]:
            stale.unlink()
        meta = {"fingerprint": fingerprint, "dtype": dtype, "flips": flips, "num_processes": num_processes}
        (cache_dir / "meta.json").write_text(json.dumps(meta, indent=1))
    barrier()

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    orientations = (False, True) if flips else (False,)
    mine = list(range(process_index, len(rows), num_processes))
    index, pending, pending_bytes, shard_number = {}, {}, 0, 0

    def flush():
        nonlocal pending, pending_bytes, shard_number
        if pending:
            name = f"embeddings-{process_index}-{shard_number:05d}.safetensors"
            save_file(pending, str(cache_dir / name))
            index.update({key: name for key in pending})
            pending, pending_bytes, shard_number = {}, 0, shard_number + 1

    bar = tqdm(total=len(mine) * len(orientations), desc="embedding cache", unit="img", disable=not progress)
    keys, images = [], []

    def run_batch():
        if not keys:
            return
        nonlocal pending_bytes
        pixels = image_processor(images=images, return_tensors="pt")["pixel_values"].to(device)
        embeddings = model.get_image_embeddings(pixels).to(DTYPES[dtype]).cpu()
        for key, embedding in zip(keys, embeddings):
            pending[key] = embedding.contiguous()
            pending_bytes += embedding.numel() * embedding.element_size()
        bar.update(len(keys))
        keys.clear()
        images.clear()
        if pending_bytes >= shard_megabytes * 2**20:
            flush()

    for row_index in mine:
        row = rows[row_index]
        image = image_array(row["image"])
        for flip in orientations:
            keys.append(row_key(row, flip))
            images.append(np.ascontiguousarray(image[:, ::-1] if flip else image))
            if len(keys) >= batch_size:
                run_batch()
    run_batch()
    flush()
    bar.close()
    (cache_dir / f"index-{process_index}.json").write_text(json.dumps(index))
    (cache_dir / f"complete-{process_index}").write_text("ok")
    model.train(was_training)
    barrier()
    return EmbeddingCache(cache_dir)


def cache_size_bytes(cache_dir) -> int:
    return sum(os.path.getsize(p) for p in glob.glob(str(Path(cache_dir) / "embeddings-*.safetensors")))


__all__ = ["EmbeddingCache", "build_embedding_cache", "cache_size_bytes", "encoder_fingerprint"]
