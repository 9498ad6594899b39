"""`ultrasam data build` / `info` / `card` / `push` (wired into the `ultrasam` entry point by ultrasam_hf/cli.py)."""

import json
from pathlib import Path


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="build and inspect the US-43d datasets")
    commands = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")

    build = commands.add_parser("build", help="convert raw downloads into verified Parquet shards + manifest")
    build.add_argument("dataset", nargs="*", help="dataset slug(s) (see `ultrasam data info`)")
    build.add_argument("--raw", help="raw folder of the single DATASET")
    build.add_argument("--all", action="store_true", help="build every dataset found under --raw-root")
    build.add_argument(
        "--raw-root", help="folder holding one raw folder per dataset (names from the cards' raw_folders)"
    )
    build.add_argument("--out", required=True, help="output folder (one sub-folder per dataset)")
    build.add_argument("--num-workers", type=int, default=1)
    build.add_argument("--max-shard-mb", type=float, default=256)
    build.add_argument("--duplicates", choices=("keep", "drop-exact", "drop-near"), default="keep")
    build.add_argument(
        "--near-threshold", type=int, default=4, help="pHash Hamming distance counted as near duplicate"
    )
    build.add_argument("--cards", help="dataset card folder (default: the package's dataset_cards/)")
    build.add_argument("--no-progress", action="store_true")
    build.set_defaults(func=run_build)

    info = commands.add_parser("info", help="list the registered datasets, or summarise a build folder")
    info.add_argument("build_dir", nargs="?", help="a build folder: print its datasets and licence mix")
    info.add_argument("--json", action="store_true", help="print the build's manifest (+ licence_mix) as JSON")
    info.add_argument("--cards", help="dataset card folder")
    info.set_defaults(func=run_info)

    card = commands.add_parser(
        "card", help="write a build folder's root README.md (a config per dataset) + LICENSE.md"
    )
    card.add_argument("build_dir")
    card.add_argument("--datasets", nargs="+", metavar="SLUG", help="dataset slugs (default: every built one)")
    card.add_argument("--cards", help="dataset card folder")
    card.set_defaults(func=run_card)

    push = commands.add_parser("push", help="upload a build to a Hub dataset repository (redistributable datasets)")
    push.add_argument("build_dir")
    push.add_argument(
        "repo_id", nargs="?", help="Hub dataset repository (default: ultrasam_hf.hub.repo_ids.DATASETS_REPO)"
    )
    push.add_argument("--datasets", nargs="+", metavar="SLUG", help="dataset slugs (default: every built one)")
    push.add_argument("--private", action="store_true")
    push.add_argument("--dry-run", action="store_true", help="only say what would be pushed and skipped")
    push.add_argument("--cards", help="dataset card folder")
    push.set_defaults(func=run_push)
    data.set_defaults(func=lambda args: data.print_help() or 2)


def run_build(args) -> int:
    from .builder import build_all, build_dataset
    from .cards import load_registry

    registry = load_registry(args.cards, strict=False)
    options = dict(
        num_workers=args.num_workers,
        max_shard_mb=args.max_shard_mb,
        duplicates=args.duplicates,
        near_threshold=args.near_threshold,
        progress=not args.no_progress,
    )
    if args.all or args.raw_root:
        if not args.raw_root:
            raise ValueError("--all needs --raw-root")
        summary = build_all(args.raw_root, args.out, datasets=args.dataset or None, registry=registry, **options)
    else:
        if len(args.dataset) != 1 or not args.raw:
            raise ValueError("give one DATASET with --raw DIR, or --all --raw-root ROOT")
        manifest = build_dataset(args.dataset[0], args.raw, args.out, registry=registry, **options)
        summary = {
            "datasets": {
                manifest["dataset"]: {
                    "items": manifest["items"],
                    "rows": manifest["rows"],
                    "skip_reasons": manifest["skip_reasons"],
                }
            },
            "not_built": {},
        }
    for slug, entry in summary["datasets"].items():
        items = entry["items"]
        print(
            f"{slug}: {items['converted']}/{items['total']} items converted, rows {entry['rows']}, "
            f"skipped {entry['skip_reasons'] or 0}"
        )
    for slug, reason in summary["not_built"].items():
        print(f"{slug}: not built: {reason}")
    manifests = (
        [Path(args.out) / "manifest.json"]
        if args.all
        else [Path(args.out) / slug / "manifest.json" for slug in summary["datasets"]]
    )
    print("manifest: " + ", ".join(str(path) for path in manifests))
    return 1 if summary["not_built"] and not summary["datasets"] else 0


def run_info(args) -> int:
    from .cards import load_registry

    if args.build_dir:
        return print_build_info(Path(args.build_dir), args.json)
    for slug, spec in load_registry(args.cards, strict=False).items():
        index = "extra" if spec.index is None else f"#{spec.index}"
        print(
            f"{slug:32s} {index:6s} {spec.reader:18s} {spec.license:14s} {spec.redistribution:10s} "
            f"{', '.join(sorted(set(spec.anatomy.values())))}"
        )
    return 0


def print_build_info(build_dir: Path, as_json: bool) -> int:
    from .manifest import licence_mix

    mix = licence_mix(build_dir)  # raises FileNotFoundError naming the folder when nothing was built there
    if as_json:
        # `--all` builds have a top-level manifest; single-dataset builds one per dataset folder
        top = build_dir / "manifest.json"
        manifest = (
            json.loads(top.read_text())
            if top.is_file()
            else {path.parent.name: json.loads(path.read_text()) for path in sorted(build_dir.glob("*/manifest.json"))}
        )
        print(json.dumps({**manifest, "licence_mix": mix}, indent=1))
        return 0
    print(f"{'dataset':24s} {'licence':14s} {'redistribution':14s} {'items':>7s} {'rows':>7s}  rows by split")
    for slug, entry in mix["datasets"].items():
        splits = ", ".join(f"{split} {count}" for split, count in entry["rows_by_split"].items())
        print(
            f"{slug:24s} {entry['license']:14s} {entry['redistribution']:14s} "
            f"{entry['items']:7d} {entry['rows']:7d}  {splits}"
        )
    print(f"\nlicence mix of {build_dir} (items: raw images / volumes / videos converted; rows: 2-D images):")
    print(f"{'licence':14s} {'datasets':>8s} {'items':>7s} {'rows':>7s} {'train rows':>10s}  datasets")
    for licence, entry in mix["licences"].items():
        train = entry["rows_by_split"].get("train", 0)
        print(
            f"{licence:14s} {len(entry['datasets']):8d} {entry['items']:7d} {entry['rows']:7d} {train:10d}  "
            f"{', '.join(entry['datasets'])}"
        )
    return 0


def run_card(args) -> int:
    from .cards import load_registry
    from .hub import write_root_card

    print(write_root_card(args.build_dir, args.datasets, load_registry(args.cards, strict=False)))
    return 0


def run_push(args) -> int:
    from ..hub.repo_ids import DATASETS_REPO
    from .cards import load_registry
    from .hub import push_to_hub

    registry = load_registry(args.cards, strict=False)
    repo_id = args.repo_id or DATASETS_REPO
    result = push_to_hub(
        args.build_dir, repo_id, args.datasets, private=args.private, registry=registry, dry_run=args.dry_run
    )
    print(f"{'would push' if args.dry_run else 'pushed'} to {repo_id}: {', '.join(result['pushed']) or 'nothing'}")
    for slug, reason in result["skipped"].items():
        print(f"skipped {slug}: {reason}")
    return 0 if result["pushed"] else 1
