"""Raw downloads -> size-bounded Parquet shards of FEATURES + a manifest; deterministic, resumable, parallel.

Determinism: items are sorted by id, assigned to shards per split by their raw byte size before anything is decoded,
converted in that order (workers return results in order) and deduplicated in that order. Resuming: a shard whose
sidecar (`<shard>.json`) carries the planned fingerprint is finished and is not touched again. Every file is written
to a temporary name and renamed, so an interrupted build never leaves a half shard that looks finished.
"""

import hashlib
import json
import multiprocessing
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from .cards import load_registry
from .convert import convert_item, file_sha256
from .dedupe import DuplicateIndex, POLICIES, should_drop
from .manifest import write_dataset_manifest, write_run_manifest
from .readers import READERS
from .schema import FEATURES, SPLITS
from .splits import assign_groups, assign_splits, check_group_leakage
from .tables import read_table


SCHEMA_VERSION = 1
ROW_GROUP_SIZE = 64  # small row groups keep streaming and random access cheap for image rows


@dataclass
class Shard:
    split: str
    index: int
    count: int
    items: list
    fingerprint: str = ""

    @property
    def name(self) -> str:
        return f"{self.split}/{self.split}-{self.index:05d}-of-{self.count:05d}.parquet"


@dataclass
class Plan:
    items: list
    listing_skips: list
    groups: dict
    splits: dict
    class_labels: dict
    spacings: dict
    metadata_files: list
    unmatched_files: list
    shared_files: frozenset
    shards: list = field(default_factory=list)


def write_atomic(path: Path, write) -> None:
    """`write(tmp_path)` then rename: readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, data) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8"))


def table_files(spec) -> list:
    tables = [spec.split.get("file"), (spec.split.get("group_from") or {}).get("file"), (spec.class_labels or {}).get("file")]
    tables.append((spec.spec.get("pixel_spacing") or {}).get("file"))
    return [name for name in tables if name]


def plan_dataset(spec, raw_dir: Path, max_shard_bytes: int) -> Plan:
    raw_dir = Path(raw_dir)
    items = sorted(READERS[spec.reader].list_items(raw_dir, spec.spec, spec.categories), key=lambda item: item.item_id)
    seen, unique, listing_skips = set(), [], []
    for item in items:
        if item.item_id in seen:
            item.skip_reason = f"duplicate image id: {item.item_id} (make the card's image_id template unique)"
        seen.add(item.item_id)
        (listing_skips if item.skip_reason else unique).append(item)
    groups = assign_groups(raw_dir, unique, spec.split)
    splits = assign_splits(raw_dir, spec.slug, unique, groups, spec.split)
    class_labels = read_table(raw_dir, spec.class_labels, "column") if spec.class_labels else {}
    spacing_options = spec.spec.get("pixel_spacing")
    spacings = read_table(raw_dir, spacing_options, "column") if spacing_options else {}

    metadata_files = sorted(set(table_files(spec)) | set(spec.spec.get("metadata", [])))
    claimed = set(metadata_files)
    users = {}
    for item in items:
        for path in item.files:
            users[path] = users.get(path, 0) + 1
    claimed |= set(users)
    all_files = sorted(path.relative_to(raw_dir).as_posix() for path in raw_dir.rglob("*") if path.is_file())
    unmatched = [path for path in all_files if path not in claimed]
    shared = frozenset(path for path, count in users.items() if count > 1)

    plan = Plan(unique, listing_skips, groups, splits, class_labels, spacings, metadata_files, unmatched, shared)
    sizes = {path: (raw_dir / path).stat().st_size if (raw_dir / path).is_file() else 0 for path in users}
    for split in SPLITS:
        chunks, current, current_bytes = [], [], 0
        for item in (item for item in unique if splits[item.item_id] == split):
            item_bytes = sum(sizes[path] / users[path] for path in item.files)
            if current and current_bytes + item_bytes > max_shard_bytes:
                chunks.append(current)
                current, current_bytes = [], 0
            current.append(item)
            current_bytes += item_bytes
        if current:
            chunks.append(current)
        for index, chunk in enumerate(chunks):
            plan.shards.append(Shard(split, index, len(chunks), chunk))
    return plan


def shard_fingerprint(spec, raw_dir: Path, shard: Shard, plan: Plan, options: dict) -> str:
    """Changes whenever the shard's content could: card spec, options, items, their raw files' sizes and mtimes."""
    entries = []
    for item in shard.items:
        stats = []
        for path in item.files:
            stat = (Path(raw_dir) / path).stat()
            stats.append([path, stat.st_size, stat.st_mtime_ns])
        entries.append([item.item_id, plan.groups[item.item_id], plan.class_labels.get(item.key), plan.spacings.get(item.key), stats])
    card = {key: getattr(spec, key) for key in ("reader", "spec", "categories", "anatomy", "split", "min_area", "license", "class_labels")}
    blob = json.dumps([SCHEMA_VERSION, card, options, shard.name, entries], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def item_task(spec, raw_dir, plan: Plan, item):
    spacing = plan.spacings.get(item.key)
    return partial(
        convert_item,
        spec,
        raw_dir,
        item,
        plan.splits[item.item_id],
        plan.groups[item.item_id],
        plan.class_labels.get(item.key),
        [float(spacing), float(spacing)] if spacing else None,
        plan.shared_files,
    )


def run_task(task):
    return task()


def write_shard(path: Path, rows: list) -> None:
    encoded = [FEATURES.encode_example({key: value for key, value in row.items() if not key.startswith("_")}) for row in rows]
    table = pa.Table.from_pylist(encoded, schema=FEATURES.arrow_schema)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp, row_group_size=ROW_GROUP_SIZE))


def build_dataset(
    dataset,
    raw_dir,
    out_dir,
    *,
    registry=None,
    num_workers: int = 1,
    max_shard_mb: float = 256,
    duplicates: str = "keep",
    near_threshold: int = 4,
    progress: bool = True,
    duplicate_index: DuplicateIndex | None = None,
    pool=None,
) -> dict:
    """Build one dataset (a slug or a DatasetSpec) from its raw download into `out_dir/<slug>/`; returns the manifest.

    Bad items (unreadable image, wrong mask size, empty or missing mask, unknown layout) are recorded as skips with
    their reason and the build goes on. Re-running a finished build decodes nothing.
    """
    if duplicates not in POLICIES:
        raise ValueError(f"duplicates policy must be one of {POLICIES}, got {duplicates!r}")
    spec = dataset if not isinstance(dataset, str) else (registry or load_registry()).get(dataset)
    if spec is None:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(registry or load_registry())}")
    raw_dir, out_dir = Path(raw_dir), Path(out_dir) / spec.slug
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"raw folder of {spec.slug} not found: {raw_dir}")
    plan = plan_dataset(spec, raw_dir, int(max_shard_mb * 2**20))
    options = {"duplicates": duplicates, "near_threshold": near_threshold}
    index = duplicate_index or DuplicateIndex(near_threshold)

    planned = {shard.name for shard in plan.shards}
    for stale in out_dir.glob("*/*.parquet"):  # shards of an earlier plan (other --max-shard-mb) would be loaded too
        if stale.relative_to(out_dir).as_posix() not in planned:
            stale.unlink()
            stale.with_name(stale.name + ".json").unlink(missing_ok=True)

    bar = tqdm(total=len(plan.items), desc=spec.slug, unit="item", disable=not progress)
    own_pool, sidecars, pairs = None, [], []
    try:
        for shard in plan.shards:
            shard.fingerprint = shard_fingerprint(spec, raw_dir, shard, plan, options)
            path = out_dir / shard.name
            sidecar_path = path.with_name(path.name + ".json")
            sidecar = json.loads(sidecar_path.read_text()) if sidecar_path.is_file() and path.is_file() else None
            if sidecar and sidecar.get("fingerprint") == shard.fingerprint:
                for ref in sidecar["kept_hashes"]:  # later shards and datasets are deduplicated against these rows
                    index.add(ref["ref"], ref["sha256"], int(ref["phash"], 16))
                sidecars.append(sidecar)
                pairs += sidecar["duplicate_pairs"]
                bar.update(len(shard.items))
                continue
            tasks = [item_task(spec, raw_dir, plan, item) for item in shard.items]
            if num_workers > 1 and pool is None and own_pool is None:
                own_pool = multiprocessing.get_context("fork").Pool(num_workers)
            workers = pool or own_pool
            results = workers.imap(run_task, tasks, chunksize=4) if workers else map(run_task, tasks)
            rows, item_records, kept_hashes, shard_pairs = [], [], [], []
            for result in results:
                bar.update(1)
                kept = []
                for row in result.pop("rows"):
                    ref = {"dataset": spec.slug, "image_id": row["image_id"], "split": row["split"]}
                    kind, earlier, distance = index.check(ref, row["_sha256"], row["_phash"])
                    if kind:
                        dropped = should_drop(kind, duplicates)
                        shard_pairs.append({"kind": kind, "distance": distance, "row": ref, "earlier": earlier, "dropped": dropped, "cross_split": earlier["split"] != ref["split"]})
                        if dropped:
                            continue
                    index.add(ref, row["_sha256"], row["_phash"])
                    kept_hashes.append({"ref": ref, "sha256": row["_sha256"], "phash": f"{row['_phash']:016x}"})
                    kept.append(row)
                    result.setdefault("categories", {})
                    for obj in row["objects"]:
                        result["categories"][obj["category"]] = result["categories"].get(obj["category"], 0) + 1
                if result["status"] == "converted" and not kept:
                    result.update(status="skipped", reason="duplicate: every frame duplicates an earlier row")
                result["split"], result["group"], result["rows_kept"] = plan.splits[result["item_id"]], plan.groups[result["item_id"]], len(kept)
                rows += kept
                item_records.append(result)
            write_shard(path, rows)
            sidecar = {
                "fingerprint": shard.fingerprint,
                "shard": shard.name,
                "rows": len(rows),
                "bytes": path.stat().st_size,
                "sha256": file_sha256(path),
                "items": item_records,
                "kept_hashes": kept_hashes,
                "duplicate_pairs": shard_pairs,
            }
            write_json(sidecar_path, sidecar)
            sidecars.append(sidecar)
            pairs += shard_pairs
    finally:
        bar.close()
        if own_pool is not None:
            own_pool.close()
            own_pool.join()
    leaked = check_group_leakage(plan.groups, plan.splits)
    return write_dataset_manifest(out_dir, spec, raw_dir, plan, sidecars, pairs, leaked, {**options, "max_shard_mb": max_shard_mb})


def resolve_raw_dir(raw_root: Path, spec) -> Path | None:
    for name in spec.raw_folders:
        if (Path(raw_root) / name).is_dir():
            return Path(raw_root) / name
    return None


def build_all(raw_root, out_dir, *, datasets=None, registry=None, num_workers: int = 1, near_threshold: int = 4, **options) -> dict:
    """Build every registered dataset found under `raw_root` (in slug order; missing ones are recorded, not fatal)."""
    registry = registry or load_registry()
    slugs = sorted(datasets or registry)
    unknown = [slug for slug in slugs if slug not in registry]
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; known: {sorted(registry)}")
    index = DuplicateIndex(near_threshold)  # one index: duplicates are found across datasets too
    manifests, missing = {}, {}
    pool = multiprocessing.get_context("fork").Pool(num_workers) if num_workers > 1 else None
    try:
        for slug in slugs:
            raw_dir = resolve_raw_dir(raw_root, registry[slug])
            if raw_dir is None:
                missing[slug] = f"raw folder not found: none of {registry[slug].raw_folders} under {raw_root}"
                continue
            try:
                manifests[slug] = build_dataset(registry[slug], raw_dir, out_dir, near_threshold=near_threshold, duplicate_index=index, pool=pool, num_workers=num_workers, **options)
            except (ValueError, FileNotFoundError) as error:  # one broken card or layout must not stop the others
                missing[slug] = f"build failed: {error}"
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return write_run_manifest(Path(out_dir), manifests, missing)
