"""Raw downloads -> size-bounded Parquet shards of FEATURES + a manifest; deterministic, resumable, parallel.

Determinism: items are sorted by id and assigned to shards per split by their raw byte size before anything is
decoded. Every item of every unfinished shard of every dataset goes through one worker pool as one ordered stream
(parallel over datasets and items, no pause between shards or datasets); the results come back in that order and
are deduplicated and written in it, so the shards are the same bytes whatever the number of workers.
Resuming: a shard whose sidecar (`<shard>.json`) carries the planned fingerprint is finished and is not touched
again. Every file is written to a temporary name and renamed, so an interrupted build never leaves a half shard that
looks finished.
"""

import hashlib
import json
import multiprocessing
import os
import threading
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from .cards import load_registry
from .convert import convert_item, file_sha256
from .dedupe import POLICIES, DuplicateIndex, should_drop
from .manifest import write_dataset_manifest, write_run_manifest
from .readers import READERS
from .schema import ANATOMY_VOCABULARY, FEATURES, SPLITS
from .splits import assign_groups, assign_splits, check_group_leakage, unlisted_items
from .tables import read_table

# 2: pixels-only images, variable-length pixel_spacing_mm; 3: `anatomy` a ClassLabel, `instance_map` PNG column
SCHEMA_VERSION = 3
ROW_GROUP_SIZE = 64  # small row groups keep streaming and random access cheap for image rows
TASKS_PER_CHUNK = 8  # items sent to a worker at a time: fewer round trips, still fine-grained for small datasets
IN_FLIGHT_PER_WORKER = 64  # converted items allowed to wait for the writer, per worker (bounds memory)


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
    file_stats: dict = field(default_factory=dict)  # raw path -> (size, mtime_ns), taken once per build


@dataclass
class Job:
    """One dataset of a build: its plan and where it goes."""

    spec: object
    raw_dir: Path
    out_dir: Path
    plan: Plan
    options: dict


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
    tables = [
        spec.split.get("file"),
        (spec.split.get("group_from") or {}).get("file"),
        (spec.class_labels or {}).get("file"),
    ]
    tables.append((spec.spec.get("pixel_spacing") or {}).get("file"))
    return [name for name in tables if name]


def skip_unlisted(raw_dir: Path, spec, items: list) -> tuple:
    """Items the release's split / group table does not list: skipped where the card says `split.unlisted: skip`."""
    unlisted = unlisted_items(raw_dir, items, spec.split)
    if not unlisted:
        return items, []
    if spec.split.get("unlisted", "error") != "skip":
        named = "; ".join(f"{item_id}: {reason}" for item_id, reason in list(unlisted.items())[:10])
        more = f" (and {len(unlisted) - 10} more)" if len(unlisted) > 10 else ""
        raise ValueError(
            f"{len(unlisted)} item(s) missing from the release's tables: {named}{more}. "
            "Set `split: {unlisted: skip}` in the card to skip them instead"
        )
    for item in items:
        if item.item_id in unlisted:
            item.skip_reason = unlisted[item.item_id]
    return [item for item in items if item.item_id not in unlisted], [
        item for item in items if item.item_id in unlisted
    ]


def file_stat(path: str) -> tuple:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return 0, 0
    return stat.st_size, stat.st_mtime_ns


def plan_dataset(spec, raw_dir: Path, max_shard_bytes: int) -> Plan:
    raw_dir = Path(raw_dir)
    items = sorted(READERS[spec.reader].list_items(raw_dir, spec.spec, spec.categories), key=lambda item: item.item_id)
    seen, unique, listing_skips = set(), [], []
    for item in items:
        if item.item_id in seen:
            item.skip_reason = f"duplicate image id: {item.item_id} (make the card's image_id template unique)"
        seen.add(item.item_id)
        (listing_skips if item.skip_reason else unique).append(item)
    unique, unlisted = skip_unlisted(raw_dir, spec, unique)
    listing_skips += unlisted
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
    plan.file_stats = {path: file_stat(os.path.join(raw_dir, path)) for path in users}
    sizes = {path: plan.file_stats[path][0] for path in users}
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
            stats.append([path, *plan.file_stats[path]])
        entries.append(
            [
                item.item_id,
                plan.groups[item.item_id],
                plan.class_labels.get(item.key),
                plan.spacings.get(item.key),
                stats,
            ]
        )
    card = {
        key: getattr(spec, key)
        for key in ("reader", "spec", "categories", "anatomy", "split", "min_area", "license", "class_labels")
    }
    blob = json.dumps([SCHEMA_VERSION, card, options, shard.name, entries], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def check_anatomy(spec) -> None:
    """Every anatomy term of the spec must be a name of the `anatomy` ClassLabel (schema.ANATOMY_VOCABULARY)."""
    unknown = sorted({term for term in spec.anatomy.values() if term not in ANATOMY_VOCABULARY})
    if unknown:
        raise ValueError(
            f"{spec.slug}: anatomy term(s) {unknown} are not in the shared anatomy vocabulary (the `anatomy` "
            "ClassLabel, ultrasam_hf.data.schema.ANATOMY_VOCABULARY = the us-43d card's ultrasam.anatomy_vocabulary): "
            "map the card's categories to vocabulary terms, or append the new term to both lists"
        )


def plan_job(spec, raw_dir: Path, out_root: Path, options: dict, max_shard_mb: float) -> Job:
    """Plan one dataset and fingerprint its shards (runs in a worker: datasets are planned in parallel)."""
    check_anatomy(spec)
    plan = plan_dataset(spec, raw_dir, int(max_shard_mb * 2**20))
    for shard in plan.shards:
        shard.fingerprint = shard_fingerprint(spec, raw_dir, shard, plan, options)
    return Job(spec, Path(raw_dir), Path(out_root) / spec.slug, plan, {**options, "max_shard_mb": max_shard_mb})


def plan_job_or_error(arguments: tuple):
    """-> (Job, None) or (None, reason): one broken card, layout or table must not stop the other datasets."""
    try:
        return plan_job(*arguments), None
    except Exception as error:  # noqa: BLE001 - recorded in the run manifest under not_built
        return None, f"build failed: {type(error).__name__}: {error}"


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
    """Rows already encoded by `FEATURES.encode_example` (in the workers); keys starting with "_" are not stored."""
    table = pa.Table.from_pylist(
        [{key: value for key, value in row.items() if not key.startswith("_")} for row in rows],
        schema=FEATURES.arrow_schema,
    )
    write_atomic(path, lambda tmp: pq.write_table(table, tmp, row_group_size=ROW_GROUP_SIZE))


def finished_sidecar(job: Job, shard: Shard) -> dict | None:
    path = job.out_dir / shard.name
    sidecar_path = path.with_name(path.name + ".json")
    if not (sidecar_path.is_file() and path.is_file()):
        return None
    try:
        sidecar = json.loads(sidecar_path.read_text())
    except (OSError, ValueError):
        return None  # a damaged sidecar: redo the shard
    return sidecar if sidecar.get("fingerprint") == shard.fingerprint else None


def remove_stale_shards(job: Job) -> None:
    """Shards of an earlier plan (another --max-shard-mb) would be loaded too."""
    planned = {shard.name for shard in job.plan.shards}
    for stale in job.out_dir.glob("*/*.parquet"):
        if stale.relative_to(job.out_dir).as_posix() not in planned:
            stale.unlink()
            stale.with_name(stale.name + ".json").unlink(missing_ok=True)


def dedupe_and_write(job: Job, shard: Shard, results, index: DuplicateIndex, duplicates: str) -> dict:
    """Converted items of one shard, in order -> rows kept after deduplication -> the shard and its sidecar."""
    spec, plan = job.spec, job.plan
    rows, item_records, kept_hashes, shard_pairs = [], [], [], []
    for result in results:
        kept = []
        for row in result.pop("rows"):
            ref = {"dataset": spec.slug, "image_id": row["image_id"], "split": row["split"]}
            kind, earlier, distance = index.check(ref, row["_sha256"], row["_phash"])
            if kind:
                dropped = should_drop(kind, duplicates)
                shard_pairs.append(
                    {
                        "kind": kind,
                        "distance": distance,
                        "row": ref,
                        "earlier": earlier,
                        "dropped": dropped,
                        "cross_split": earlier["split"] != ref["split"],
                    }
                )
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
        result["split"], result["group"], result["rows_kept"] = (
            plan.splits[result["item_id"]],
            plan.groups[result["item_id"]],
            len(kept),
        )
        rows += kept
        item_records.append(result)
    path = job.out_dir / shard.name
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
    write_json(path.with_name(path.name + ".json"), sidecar)
    return sidecar


class ItemStream:
    """Results of `tasks` in task order, from a pool of workers (or this process when there is none).

    At most IN_FLIGHT_PER_WORKER items per worker are sent ahead of the writer, so a writer busy with a large shard
    never has every decoded image of a build waiting in memory.
    """

    def __init__(self, tasks, num_workers: int, pool=None):
        window = max(IN_FLIGHT_PER_WORKER, TASKS_PER_CHUNK) * max(num_workers, 1)  # at least one whole chunk
        self.permits = threading.Semaphore(window)
        self.stopping = threading.Event()
        self.own_pool = None
        if pool is None and num_workers > 1:
            self.own_pool = pool = multiprocessing.get_context("fork").Pool(num_workers)
        self.results = (
            pool.imap(run_task, self.bounded(tasks), chunksize=TASKS_PER_CHUNK) if pool else map(run_task, tasks)
        )

    def bounded(self, tasks):
        for task in tasks:
            self.permits.acquire()  # runs in the pool's feeder thread: waits for the writer
            if self.stopping.is_set():
                return
            yield task

    def take(self, count: int, bar):
        for result in islice(self.results, count):
            self.permits.release()
            bar.update(1)
            yield result

    def close(self, failed: bool) -> None:
        self.stopping.set()
        self.permits.release(1 << 16)  # a feeder waiting for a permit sees `stopping` and ends
        if self.own_pool is not None:
            self.own_pool.terminate() if failed else self.own_pool.close()
            self.own_pool.join()


def run_jobs(
    jobs: list,
    *,
    num_workers: int = 1,
    duplicates: str = "keep",
    index: DuplicateIndex,
    progress: bool = True,
    pool=None,
) -> list:
    """Convert, deduplicate and write every unfinished shard of `jobs` (in order); -> one manifest per job."""
    finished = {}
    for job in jobs:
        remove_stale_shards(job)
        for shard in job.plan.shards:
            finished[(job.spec.slug, shard.name)] = finished_sidecar(job, shard)
    tasks = (
        item_task(job.spec, job.raw_dir, job.plan, item)
        for job in jobs
        for shard in job.plan.shards
        if finished[(job.spec.slug, shard.name)] is None
        for item in shard.items
    )
    if not any(sidecar is None for sidecar in finished.values()):
        num_workers = 1  # nothing to convert: no pool to start
    stream = ItemStream(tasks, num_workers, pool)
    bar = tqdm(total=sum(len(job.plan.items) for job in jobs), unit="item", disable=not progress)
    manifests, failed = [], True
    try:
        for job in jobs:
            bar.set_description(job.spec.slug)
            sidecars, pairs = [], []
            for shard in job.plan.shards:
                sidecar = finished[(job.spec.slug, shard.name)]
                if sidecar is None:
                    sidecar = dedupe_and_write(job, shard, stream.take(len(shard.items), bar), index, duplicates)
                else:
                    for ref in sidecar["kept_hashes"]:  # later shards and datasets are deduplicated against these rows
                        index.add(ref["ref"], ref["sha256"], int(ref["phash"], 16))
                    bar.update(len(shard.items))
                sidecars.append(sidecar)
                pairs += sidecar["duplicate_pairs"]
            leaked = check_group_leakage(job.plan.groups, job.plan.splits)
            manifests.append(
                write_dataset_manifest(
                    job.out_dir, job.spec, job.raw_dir, job.plan, sidecars, pairs, leaked, job.options
                )
            )
        failed = False
    finally:
        bar.close()
        stream.close(failed)
    return manifests


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

    Bad items (unreadable image, decoder error, wrong mask size, empty or missing mask, unknown layout, an image the
    release's tables do not list when the card allows skipping it) are recorded as skips with their reason and the
    build goes on. Re-running a finished build decodes nothing.
    """
    if duplicates not in POLICIES:
        raise ValueError(f"duplicates policy must be one of {POLICIES}, got {duplicates!r}")
    spec = dataset if not isinstance(dataset, str) else (registry or load_registry()).get(dataset)
    if spec is None:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(registry or load_registry())}")
    if not Path(raw_dir).is_dir():
        raise FileNotFoundError(f"raw folder of {spec.slug} not found: {raw_dir}")
    options = {"duplicates": duplicates, "near_threshold": near_threshold}
    job = plan_job(spec, Path(raw_dir), Path(out_dir), options, max_shard_mb)
    index = duplicate_index or DuplicateIndex(near_threshold)
    return run_jobs([job], num_workers=num_workers, duplicates=duplicates, index=index, progress=progress, pool=pool)[
        0
    ]


def resolve_raw_dir(raw_root: Path, spec) -> Path | None:
    for name in spec.raw_folders:
        if (Path(raw_root) / name).is_dir():
            return Path(raw_root) / name
    return None


def build_all(
    raw_root,
    out_dir,
    *,
    datasets=None,
    registry=None,
    num_workers: int = 1,
    max_shard_mb: float = 256,
    duplicates: str = "keep",
    near_threshold: int = 4,
    progress: bool = True,
) -> dict:
    """Build every registered dataset found under `raw_root` (in slug order; missing or broken ones are recorded).

    Datasets are planned in parallel, then all their items stream through one pool of `num_workers` processes.
    Duplicates are found across datasets too (one index, datasets in slug order).
    """
    if duplicates not in POLICIES:
        raise ValueError(f"duplicates policy must be one of {POLICIES}, got {duplicates!r}")
    registry = registry or load_registry()
    slugs = sorted(datasets or registry)
    unknown = [slug for slug in slugs if slug not in registry]
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; known: {sorted(registry)}")
    options = {"duplicates": duplicates, "near_threshold": near_threshold}
    missing, found = {}, []
    for slug in slugs:
        raw_dir = resolve_raw_dir(raw_root, registry[slug])
        if raw_dir is None:
            missing[slug] = f"raw folder not found: none of {registry[slug].raw_folders} under {raw_root}"
        else:
            found.append((registry[slug], raw_dir, Path(out_dir), options, max_shard_mb))
    pool = multiprocessing.get_context("fork").Pool(num_workers) if num_workers > 1 else None
    try:
        planned = list(pool.imap(plan_job_or_error, found) if pool else map(plan_job_or_error, found))
        jobs = []
        for (spec, *_), (job, error) in zip(found, planned):
            if error:
                missing[spec.slug] = error
            else:
                jobs.append(job)
        manifests = run_jobs(
            jobs,
            num_workers=num_workers,
            duplicates=duplicates,
            index=DuplicateIndex(near_threshold),
            progress=progress,
            pool=pool,
        )
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return write_run_manifest(
        Path(out_dir), {job.spec.slug: manifest for job, manifest in zip(jobs, manifests)}, missing
    )
