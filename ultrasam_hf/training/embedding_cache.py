"""Precomputed image embeddings for frozen-encoder training, or early-stage features for late-encoder training.

`build_embedding_cache` runs `model.get_image_embeddings` once per (image, orientation) and writes safetensors shards
into a cache folder; `EmbeddingCache` reads one embedding by key (`dataset/image_id`, `|flip` for the mirrored image).
Prompt-encoder / mask-decoder training then never runs the encoder: on a CPU it is the difference between seconds and
milliseconds per image.

With `frozen_stages=k` (the `late-encoder` variant, TinyViT only) the cached tensor is instead the input of TinyViT
stage k, `model.vision_encoder.up_to_stage(k, pixels)` (`(C, H, W)`), and the fingerprint covers only that frozen early
part (patch embedding + stages 0..k-1: weights, batch-norm statistics, their config) and k: training the late stages,
neck and decoder on top of it leaves the cache valid. `EmbeddingCache.field` names the batch entry it fills
(`image_embeddings` or `encoder_features`).

Flips: by default both orientations are cached (twice the cache time and size) so that random horizontal flips stay
on; `--no-cache-flips` caches only the original orientation and training then turns flips off.

Layout of the folder: `meta.json` (fingerprint of the encoder weights + preprocessing, dtype, orientations, split),
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
from .variants import check_split

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}

# saved-processor entries that name code, not pixels: a model's saved processor has them, one built from its config
# does not, and the two must find each other's caches
_PROCESSOR_METADATA = ("auto_map", "image_processor_type", "processor_class", "_processor_class")

# the TinyViT config entries per stage: stage k's input depends on entries [:k] (and the width of stage k)
_STAGE_FIELDS = ("tiny_vit_depths", "tiny_vit_num_heads", "tiny_vit_window_sizes", "tiny_vit_downsample_strides")
_GLOBAL_FIELDS = (
    "image_size",
    "num_channels",
    "layer_norm_eps",
    "tiny_vit_mbconv_expand_ratio",
    "tiny_vit_local_conv_size",
)


def encoder_fingerprint(model, image_processor, dtype: str, flips: bool, frozen_stages: int | None = None) -> str:
    """sha256 of the vision encoder's weights, the model config's input geometry and the preprocessing; with
    `frozen_stages` of the frozen early part only (patch embedding + stages before it, and their config) and the
    split point."""
    digest = hashlib.sha256()
    state = model.vision_encoder.state_dict()
    if frozen_stages is not None:
        check_split(model, frozen_stages)
        prefixes = tuple(f"{name}." for name in model.vision_encoder.modules_up_to_stage(frozen_stages))
        state = {name: tensor for name, tensor in state.items() if name.startswith(prefixes)}
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        if frozen_stages is not None:
            digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    processor_config = image_processor.to_dict() if hasattr(image_processor, "to_dict") else {}
    processor_config = {key: value for key, value in processor_config.items() if key not in _PROCESSOR_METADATA}
    digest.update(json.dumps(processor_config, sort_keys=True, default=str).encode())
    digest.update(f"{dtype}|{flips}".encode())
    if frozen_stages is not None:
        vision = model.config.vision_config
        geometry = {name: getattr(vision, name, None) for name in _GLOBAL_FIELDS}
        geometry.update({name: list(getattr(vision, name))[:frozen_stages] for name in _STAGE_FIELDS})
        geometry["tiny_vit_embed_dims"] = list(vision.tiny_vit_embed_dims)[: frozen_stages + 1]
        digest.update(f"|up_to_stage {frozen_stages}|{json.dumps(geometry, sort_keys=True)}".encode())
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

    @property
    def frozen_stages(self) -> int | None:
        """None: whole-encoder embeddings; k: the input of TinyViT stage k (late-encoder)."""
        return self.meta.get("frozen_stages")

    @property
    def field(self) -> str:
        """The batch entry the cached tensors fill."""
        return "image_embeddings" if self.frozen_stages is None else "encoder_features"

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
    frozen_stages: int | None = None,
    vision_encoder=None,
) -> EmbeddingCache:
    """Embed every row of `rows` (a map-style dataset, or any list of rows), in both orientations with `flips`.

    Returns the `EmbeddingCache`. `wait_for_everyone` (e.g. `accelerator.wait_for_everyone`) synchronises processes.
    `frozen_stages=k`: cache `model.vision_encoder.up_to_stage(k, pixels)` (TinyViT) instead of the embeddings.
    `vision_encoder`: runs `model`'s encoder another way, called as `model.vision_encoder` is (its ONNX graph:
    `teacher_runtime.teacher_encoder`); the cache is still `model`'s, keyed by its weights.
    """
    if vision_encoder is not None and frozen_stages is not None:
        raise ValueError("vision_encoder computes embeddings: it does not combine with frozen_stages")
    from tqdm.auto import tqdm

    cache_dir = Path(cache_dir)
    barrier = wait_for_everyone or (lambda: None)
    fingerprint = encoder_fingerprint(model, image_processor, dtype, flips, frozen_stages)
    if _is_complete(cache_dir, fingerprint, num_processes):
        barrier()
        return check_covers(EmbeddingCache(cache_dir), rows)
    if process_index == 0:
        cache_dir.mkdir(parents=True, exist_ok=True)
        if (cache_dir / "meta.json").is_file():  # say why hours of embeddings are about to go
            print(f"rebuilding {cache_dir}: made for another encoder, preprocessing or settings, or interrupted")
        for stale in [
            *cache_dir.glob("embeddings-*.safetensors"),
            *cache_dir.glob("index-*.json"),
            *cache_dir.glob("complete-*"),
        ]:
            stale.unlink()
        meta = {"fingerprint": fingerprint, "dtype": dtype, "flips": flips, "num_processes": num_processes}
        if frozen_stages is not None:
            meta["frozen_stages"] = frozen_stages
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

    description = "embedding cache" if frozen_stages is None else f"stage-{frozen_stages} feature cache"
    bar = tqdm(total=len(mine) * len(orientations), desc=description, unit="img", disable=not progress)
    keys, images = [], []

    def run_batch():
        if not keys:
            return
        nonlocal pending_bytes
        pixels = image_processor(images=images, return_tensors="pt")["pixel_values"].to(device)
        if vision_encoder is not None:
            embeddings = vision_encoder(pixels).last_hidden_state
        elif frozen_stages is None:
            embeddings = model.get_image_embeddings(pixels)
        else:
            embeddings = model.vision_encoder.up_to_stage(frozen_stages, pixels)
        embeddings = embeddings.to(DTYPES[dtype]).cpu()
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


def check_covers(cache: EmbeddingCache, rows) -> EmbeddingCache:
    """`cache`, after checking it holds every row of `rows` in each of its orientations: a complete cache is reused on
    its fingerprint (the encoder), which does not name the images, so one built for other rows is refused here rather
    than failing mid-training on the first missing key."""
    if hasattr(rows, "column_names"):  # a `datasets.Dataset`: read the two columns, not the images
        rows = [{"dataset": slug, "image_id": image_id} for slug, image_id in zip(rows["dataset"], rows["image_id"])]
    orientations = (False, True) if cache.flips else (False,)
    keys = [row_key(row, flip) for row in rows for flip in orientations]
    missing = [key for key in keys if key not in cache]
    if missing:
        raise ValueError(
            f"the embedding cache {cache.cache_dir} ({len(cache)} entries) lacks {len(missing)} of the "
            f"{len(keys)} training images' embeddings (first: {missing[0]!r}): it was built for other images; "
            "delete it or name another folder"
        )
    return cache


def cache_size_bytes(cache_dir) -> int:
    return sum(os.path.getsize(p) for p in glob.glob(str(Path(cache_dir) / "embeddings-*.safetensors")))


__all__ = ["EmbeddingCache", "build_embedding_cache", "cache_size_bytes", "check_covers", "encoder_fingerprint"]
