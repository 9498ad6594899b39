"""Build throughput of the four development sets in ../shared/us with 1 and 2 workers, written to docs/.

    .venv/bin/python scripts/benchmark_data.py [--raw-root ../shared/us] [--max-shard-mb 64] [--verify]

Each build starts from an empty output folder (a re-run of a finished build does no work, so it is timed too).
--verify runs the pixel-for-pixel checks of tests/data/shared_checks.py on the 2-worker build.
"""

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "data"))  # the independent raw-mask checks live with the tests

from ultrasam_hf.data import build_dataset, load_registry  # noqa: E402


DEV_SETS = {"bus-bra": "bus-bra", "hc18": "hc18", "ccaui": "common-carotid-artery", "usgra": "usgra"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-root", default=str(ROOT.parent / "shared" / "us"))
    parser.add_argument("--max-shard-mb", type=float, default=64)
    parser.add_argument("--verify", action="store_true")
    parser.add_argument("--output", default=str(ROOT / "docs" / "data_build_benchmark.md"))
    args = parser.parse_args()
    raw_root = Path(args.raw_root)
    if not raw_root.is_dir():
        print(f"raw root {raw_root} not found: nothing to benchmark")
        return 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry = load_registry(strict=False)
    lines = [
        "| dataset | items | rows | skipped | 1 worker (img/s) | 2 workers (img/s) | speed-up | re-run (s) | shards | shard MB (max) | raw MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    checked = {}
    with tempfile.TemporaryDirectory() as scratch:
        for slug, folder in DEV_SETS.items():
            raw = raw_root / folder
            timings = {}
            for workers in (1, 2):
                out = Path(scratch) / f"w{workers}"
                shutil.rmtree(out, ignore_errors=True)
                start = time.perf_counter()
                manifest = build_dataset(registry[slug], raw, out, num_workers=workers, max_shard_mb=args.max_shard_mb, progress=False)
                timings[workers] = time.perf_counter() - start
            start = time.perf_counter()
            build_dataset(registry[slug], raw, out, num_workers=2, max_shard_mb=args.max_shard_mb, progress=False)
            rerun = time.perf_counter() - start
            if args.verify:
                from shared_checks import check_build

                checked[slug] = check_build(slug, raw, out, manifest)
            items = manifest["items"]["total"]
            rows = sum(manifest["rows"].values())
            shard_mb = [shard["bytes"] / 2**20 for shard in manifest["shards"]]
            raw_mb = sum(path.stat().st_size for path in raw.rglob("*") if path.is_file()) / 2**20
            lines.append(
                f"| {slug} | {items} | {rows} | {manifest['items']['skipped']} | {items / timings[1]:.1f} | {items / timings[2]:.1f} "
                f"| {timings[1] / timings[2]:.2f}x | {rerun:.2f} | {len(shard_mb)} | {sum(shard_mb):.1f} ({max(shard_mb):.1f}) | {raw_mb:.1f} |"
            )
            print(lines[-1], flush=True)
    table = "\n".join(lines)
    note = (
        "# Data build benchmark\n\n"
        f"`.venv/bin/python scripts/benchmark_data.py{' --verify' if args.verify else ''}` on the development sets in `../shared/us` "
        f"(2-core CPU machine, `--max-shard-mb {args.max_shard_mb:g}`, shared with other jobs: treat numbers as indicative). "
        "Throughput = raw items / wall time of a build from scratch (listing, decoding, instances + RLE, hashing, Parquet, "
        "manifest). Re-run = a second build of the finished output (no shard is touched).\n\n"
        f"{table}\n"
    )
    if checked:
        note += f"\nPixel-for-pixel check of every row against the raw masks passed: {checked} rows.\n"
    Path(args.output).write_text(note, encoding="utf-8")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
