"""Build throughput of the development sets in ../shared/us, serial against parallel, written to docs/.

    .venv/bin/python scripts/benchmark_data.py [--raw-root ../shared/us] [--workers 2] [--datasets SLUG ...] [--verify]

Each dataset is built from an empty folder with 1 worker and with --workers workers, and the two builds must give
byte-identical shards (same sha256, same order); then the finished parallel build is built again (a re-run does no
work). Last, every dataset is built at once with `build_all` (what `ultrasam data build --all` runs), again serial
and parallel. Throughput is given two ways: images per wall second, and images per CPU second (main process + workers,
from getrusage), which is what one core does and does not depend on other jobs sharing the machine.
--verify runs the pixel-for-pixel checks of tests/data/shared_checks.py on the parallel build.
--stages SLUG adds where the CPU time of a serial build of SLUG goes: each stage function is wrapped with
time.process_time() (no profiler, whose overhead would distort the Python-heavy stages).
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "data"))  # the independent raw-mask checks live with the tests

from ultrasam_hf.data import build_all, build_dataset, load_registry  # noqa: E402

DEV_SETS = {"bus-bra": "bus-bra", "hc18": "hc18", "ccaui": "common-carotid-artery", "usgra": "usgra"}


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers, once joined)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(build) -> tuple:
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = build()
    return result, time.perf_counter() - wall, cpu_seconds() - cpu


def stage_breakdown(registry, slug: str, raw: Path, out: Path, max_shard_mb: float) -> list:
    """Markdown rows: CPU ms per image of each stage of a serial build."""
    from ultrasam_hf.data import builder, convert
    from ultrasam_hf.data.readers import pairs

    spent, patched = {}, []

    def wrap(owner, name, label):
        real = getattr(owner, name)

        def timed_stage(*args, **kwargs):
            start = time.process_time()
            try:
                return real(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.process_time() - start

        setattr(owner, name, timed_stage)
        patched.append((owner, name, real))

    stages = [
        (pairs, "read_image", "image decode (PIL)"),
        (pairs, "read_label_image", "mask decode"),
        (pairs, "labels_to_layers", "mask -> label layers"),
        (convert, "layers_to_instances", "connected components + RLE"),
        (convert, "stored_image_bytes", "pixels-only image bytes"),
        (convert, "file_sha256", "raw file sha256 (manifest)"),
        (convert, "pixel_sha256", "pixel sha256 (exact dedupe)"),
        (convert, "phash", "perceptual hash (near dedupe)"),
        (convert.FEATURES, "encode_example", "Arrow encoding"),
        (builder, "write_shard", "Parquet writing"),
        (builder, "plan_job", "listing + planning + fingerprints"),
    ]
    for owner, name, label in stages:
        wrap(owner, name, label)
    try:
        start = time.process_time()
        manifest = build_dataset(registry[slug], raw, out, num_workers=1, max_shard_mb=max_shard_mb, progress=False)
        total = time.process_time() - start
    finally:
        for owner, name, real in reversed(patched):
            setattr(owner, name, real) if owner is not convert.FEATURES else delattr(owner, name)
    items = manifest["items"]["total"]
    lines = ["| stage | CPU ms per image | share |", "|---|---|---|"]
    for label, seconds in sorted(spent.items(), key=lambda entry: -entry[1]):
        lines.append(f"| {label} | {1000 * seconds / items:.2f} | {100 * seconds / total:.0f} % |")
    rest = total - sum(spent.values())
    lines.append(
        f"| everything else (dedupe index, manifest, glue) | {1000 * rest / items:.2f} | {100 * rest / total:.0f} % |"
    )
    lines.append(f"| **total** | **{1000 * total / items:.2f}** ({items / total:.0f} img/CPU-s) | 100 % |")
    return lines


def shard_digests(manifests: list) -> list:
    return [
        (manifest["dataset"], shard["path"], shard["sha256"]) for manifest in manifests for shard in manifest["shards"]
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-root", default=str(ROOT.parent / "shared" / "us"))
    parser.add_argument("--datasets", nargs="*", default=list(DEV_SETS), choices=list(DEV_SETS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-shard-mb", type=float, default=64)
    parser.add_argument("--verify", action="store_true")
    parser.add_argument("--stages", metavar="SLUG", choices=list(DEV_SETS), help="CPU time per build stage of SLUG")
    parser.add_argument("--output", default=str(ROOT / "docs" / "data_build_benchmark.md"))
    args = parser.parse_args()
    raw_root = Path(args.raw_root)
    if not raw_root.is_dir():
        print(f"raw root {raw_root} not found: nothing to benchmark")
        return 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry = load_registry(strict=False)
    workers = args.workers
    columns = ["dataset", "items", "rows", "serial img/s", "serial img/CPU-s", f"{workers} workers img/s"]
    columns += [f"{workers} workers img/s/core", f"{workers} workers img/CPU-s", "speed-up", "shards identical"]
    columns += ["re-run (s)", "shards", "shard MB"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    checked, identical = {}, True
    load_before = os.getloadavg()[0]

    def add_line(name, items, rows, serial, parallel, same, rerun, manifests):
        shard_mb = sum(shard["bytes"] for manifest in manifests for shard in manifest["shards"]) / 2**20
        shards = sum(len(manifest["shards"]) for manifest in manifests)
        cells = [
            name,
            items,
            rows,
            f"{items / serial[0]:.1f}",
            f"{items / serial[1]:.1f}",
            f"{items / parallel[0]:.1f}",
        ]
        cells += [
            f"{items / parallel[0] / workers:.1f}",
            f"{items / parallel[1]:.1f}",
            f"{serial[0] / parallel[0]:.2f}x",
        ]
        cells += ["yes" if same else "NO", rerun, shards, f"{shard_mb:.1f}"]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
        print(lines[-1], flush=True)

    options = dict(max_shard_mb=args.max_shard_mb, progress=False)
    with tempfile.TemporaryDirectory() as scratch:
        for slug in args.datasets:
            raw = raw_root / DEV_SETS[slug]
            one, wall1, cpu1 = timed(
                lambda: build_dataset(registry[slug], raw, Path(scratch) / "w1", num_workers=1, **options)
            )
            out = Path(scratch) / f"w{workers}"
            many, wall_n, cpu_n = timed(
                lambda: build_dataset(registry[slug], raw, out, num_workers=workers, **options)
            )
            _, rerun, _ = timed(lambda: build_dataset(registry[slug], raw, out, num_workers=workers, **options))
            same = shard_digests([one]) == shard_digests([many])
            identical &= same
            if args.verify:
                from shared_checks import check_build

                checked[slug] = check_build(slug, raw, out, many)
            rows = sum(many["rows"].values())
            add_line(slug, many["items"]["total"], rows, (wall1, cpu1), (wall_n, cpu_n), same, f"{rerun:.2f}", [many])
        if len(args.datasets) > 1:

            def run_all(name, count):
                return build_all(
                    raw_root,
                    Path(scratch) / name,
                    datasets=args.datasets,
                    registry=registry,
                    num_workers=count,
                    **options,
                )

            summary1, wall1, cpu1 = timed(lambda: run_all("all1", 1))
            summary_n, wall_n, cpu_n = timed(lambda: run_all("alln", workers))
            _, rerun, _ = timed(lambda: run_all("alln", workers))
            read = [
                Path(scratch) / name / slug / "manifest.json" for name in ("all1", "alln") for slug in args.datasets
            ]
            manifests = [json.loads(path.read_text()) for path in read]
            half = len(manifests) // 2
            same = shard_digests(manifests[:half]) == shard_digests(manifests[half:])
            identical &= same
            items = sum(entry["items"]["total"] for entry in summary_n["datasets"].values())
            rows = sum(sum(entry["rows"].values()) for entry in summary_n["datasets"].values())
            add_line(
                "all (`build_all`)",
                items,
                rows,
                (wall1, cpu1),
                (wall_n, cpu_n),
                same,
                f"{rerun:.2f}",
                manifests[half:],
            )
        if args.stages:
            stage_lines = stage_breakdown(
                registry, args.stages, raw_root / DEV_SETS[args.stages], Path(scratch) / "stages", args.max_shard_mb
            )
            print("\n".join(stage_lines), flush=True)
    table = "\n".join(lines)
    command = f"scripts/benchmark_data.py --workers {workers}{' --verify' if args.verify else ''}"
    command += f" --stages {args.stages}" if args.stages else ""
    intro = (
        f"`PYTHONPATH=$PWD .venv/bin/python {command}` on the development sets in `../shared/us`, "
        f"`--max-shard-mb {args.max_shard_mb:g}`, on a {os.cpu_count()}-core machine shared with other jobs "
        f"(1-minute load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end). "
        "Each build starts from an empty folder and covers listing, decoding, instances + RLE, pixels-only image "
        "bytes, hashing, deduplication, Parquet and manifest. img/CPU-s = images per CPU second of the main process "
        "and its workers together (getrusage), i.e. what one core does, whatever else runs; img/s/core = wall "
        f"throughput divided by the {workers} workers, which other jobs on the machine pull down. Shards identical = "
        "the serial and the parallel build wrote the same shard files (sha256, in order). Re-run = a second build of "
        "the finished output (no shard is touched)."
    )
    note = f"# Data build benchmark\n\n{textwrap.fill(intro, 119, break_on_hyphens=False)}\n\n{table}\n"
    if args.stages:
        note += f"\nCPU time per stage of a serial {args.stages} build (`--stages {args.stages}`):\n\n"
        note += "\n".join(stage_lines) + "\n"
    if checked:
        note += f"\nPixel-for-pixel check of every row against the raw images and masks passed: {checked} rows.\n"
    Path(args.output).write_text(note, encoding="utf-8")
    print(f"written to {args.output}; shards identical: {identical}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
