"""Build manifests: every raw item accounted for (converted, or skipped with its reason), counts, checksums."""

import json
import os
import time
from collections import Counter
from pathlib import Path


def reason_kind(reason: str) -> str:
    """ "mask size mismatch: mask_12.png is ..." -> "mask size mismatch" (for the per-reason counts)."""
    return reason.split(":", 1)[0].strip()


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def write_dataset_manifest(
    out_dir: Path, spec, raw_dir: Path, plan, sidecars: list, pairs: list, leaked_groups: list, options: dict
) -> dict:
    from .convert import file_sha256

    records = [record for sidecar in sidecars for record in sidecar["items"]]
    skipped = [{"item": item.item_id, "reason": item.skip_reason, "files": item.files} for item in plan.listing_skips]
    skipped += [
        {"item": record["item_id"], "reason": record["reason"], "files": sorted(record["files"])}
        for record in records
        if record["status"] == "skipped"
    ]
    skipped += [
        {"item": path, "reason": "unknown layout: file matches no pattern of the card's spec", "files": [path]}
        for path in plan.unmatched_files
    ]
    converted = [record for record in records if record["status"] == "converted"]
    rows, instances, groups = Counter(), {}, {}
    for record in converted:
        rows[record["split"]] += record["rows_kept"]
        groups.setdefault(record["split"], set()).add(record["group"])
        for category, count in record.get("categories", {}).items():
            split_counts = instances.setdefault(record["split"], {})
            split_counts[category] = split_counts.get(category, 0) + count
    dropped = [component for record in records for component in record["dropped_components"]]
    unmapped = Counter()
    for record in records:
        unmapped.update(record["unmapped"])
    raw_sha256 = {path: sha for record in records for path, sha in record["files"].items()}
    for path in [*plan.metadata_files, *sorted(plan.shared_files)]:
        if (raw_dir / path).is_file():
            raw_sha256[path] = file_sha256(raw_dir / path)
    manifest = {
        "dataset": spec.slug,
        "card": spec.card_path,
        "reader": spec.reader,
        "license": spec.license,
        "redistribution": spec.redistribution,
        "licence_note": getattr(spec, "licence_note", ""),
        "raw_dir": str(raw_dir),
        "options": options,
        "items": {
            "total": len(plan.items) + len(plan.listing_skips) + len(plan.unmatched_files),
            "converted": len(converted),
            "skipped": len(skipped),
        },
        "skip_reasons": dict(Counter(reason_kind(entry["reason"]) for entry in skipped)),
        "skipped": sorted(skipped, key=lambda entry: entry["item"]),
        "rows": dict(rows),
        "instances": instances,
        "groups": {split: len(names) for split, names in groups.items()},
        "group_kind": spec.split.get("group", "image"),
        "groups_in_several_splits": leaked_groups,
        "empty_frames": sum(record["empty_frames"] for record in records),
        "dropped_components": {
            "min_area": spec.min_area,
            "count": len(dropped),
            "by_category": dict(Counter(c["category"] for c in dropped)),
            "list": dropped,
        },
        "unmapped_labels": dict(unmapped),
        "duplicates": {
            "exact": sum(pair["kind"] == "exact" for pair in pairs),
            "near": sum(pair["kind"] == "near" for pair in pairs),
            "dropped": sum(pair["dropped"] for pair in pairs),
            "cross_split": sum(pair["cross_split"] for pair in pairs),
            "pairs": pairs,
        },
        "metadata_files": plan.metadata_files,
        "shards": [
            {"path": sidecar["shard"], "rows": sidecar["rows"], "bytes": sidecar["bytes"], "sha256": sidecar["sha256"]}
            for sidecar in sidecars
        ],
        "raw_sha256": dict(sorted(raw_sha256.items())),
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def write_run_manifest(out_dir: Path, manifests: dict, not_built: dict) -> dict:
    """Top-level `manifest.json` (per-dataset summary) and `duplicates.json` (every duplicate pair of the run)."""
    summary = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "datasets": {
            slug: {
                key: manifest[key]
                for key in (
                    "items",
                    "rows",
                    "skip_reasons",
                    "instances",
                    "groups",
                    "license",
                    "redistribution",
                    "licence_note",
                )
            }
            | {
                "duplicates": {key: value for key, value in manifest["duplicates"].items() if key != "pairs"},
                "shards": len(manifest["shards"]),
            }
            for slug, manifest in manifests.items()
        },
        "not_built": not_built,
    }
    pairs = [pair for manifest in manifests.values() for pair in manifest["duplicates"]["pairs"]]
    write_json(out_dir / "manifest.json", summary)
    write_json(
        out_dir / "duplicates.json",
        {
            "pairs": pairs,
            "cross_dataset": [pair for pair in pairs if pair["row"]["dataset"] != pair["earlier"]["dataset"]],
        },
    )
    return summary


def licence_mix(build_dir) -> dict:
    """Datasets, rows and source items of a build per licence (from its per-dataset manifests), for a model card.

    `build_dir` is an `ultrasam data build --out` folder (`<slug>/manifest.json` per dataset) or one dataset folder.
    Rows are the 2-D images in the shards (what a model trains on); items are the raw images, volumes or videos they
    came from. Returns::

        {"licences": {licence id: {"datasets": [slug], "rows": n, "rows_by_split": {split: n}, "items": n}},
         "datasets": {slug: {"license", "redistribution", "licence_note", "rows", "rows_by_split", "items"}}}
    """
    build_dir = Path(build_dir)
    paths = (
        [build_dir / "manifest.json"]
        if "dataset" in read_json(build_dir / "manifest.json")
        else sorted(build_dir.glob("*/manifest.json"))
    )
    if not paths:
        raise FileNotFoundError(
            f"no dataset manifest in {build_dir} (expected <slug>/manifest.json from `ultrasam data build`)"
        )
    datasets = {}
    for path in paths:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        by_split = {split: int(count) for split, count in sorted(manifest["rows"].items())}
        datasets[manifest["dataset"]] = {
            "license": manifest["license"],
            "redistribution": manifest.get("redistribution", "unknown"),
            "licence_note": manifest.get("licence_note", ""),
            "rows": sum(by_split.values()),
            "rows_by_split": by_split,
            "items": manifest["items"]["converted"],
        }
    return _by_licence(datasets)


def training_licence_mix(rows_by_dataset: dict) -> dict:
    """The licence mix of what a model trained on: `{slug: training rows}` with each dataset's licence from its
    card (training from a pack or a build, the cards are what travel with the package). Same layout as
    [`licence_mix`], with `rows_by_split` of the training split only."""
    from .cards import load_registry

    registry = load_registry(strict=False)
    datasets = {}
    for slug, rows in sorted(rows_by_dataset.items()):
        spec = registry.get(slug)
        datasets[slug] = {
            "license": spec.license if spec else "unknown",
            "redistribution": spec.redistribution if spec else "unknown",
            "licence_note": "" if spec else "no dataset card",
            "rows": int(rows),
            "rows_by_split": {"train": int(rows)},
            "items": int(rows),
        }
    return _by_licence(datasets)


def _by_licence(datasets: dict) -> dict:
    licences = {}
    for slug, entry in datasets.items():
        total = licences.setdefault(entry["license"], {"datasets": [], "rows": 0, "rows_by_split": {}, "items": 0})
        total["datasets"].append(slug)
        total["rows"] += entry["rows"]
        total["items"] += entry["items"]
        for split, count in entry["rows_by_split"].items():
            total["rows_by_split"][split] = total["rows_by_split"].get(split, 0) + count
    return {"licences": dict(sorted(licences.items())), "datasets": dict(sorted(datasets.items()))}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
