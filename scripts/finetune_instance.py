#!/usr/bin/env python
"""Instance segmentation on USGRA (nerves and vessels): Mask2Former on the UltraSam encoder, COCO mask mAP.

    python scripts/finetune_instance.py --raw ../shared/us/usgra --init path/to/ultrasam-lite preset:lite \
        --image-size 128 --steps 300

`--init`: saved UltraSam folders, or `preset:<name>` for a randomly initialised encoder (the baseline in the same
run). Trains on USGRA's `images/` + `masks/`, evaluates on `test/`; writes a Markdown table (`--out`) and JSON
next to it. Library code: `ultrasam_hf.downstream.instance`.
"""

import argparse
import shlex
import sys
import time
from pathlib import Path

# `scripts/` holds an `evaluate.py`, which would shadow the `evaluate` package when this file is run as a script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from ultrasam_hf.downstream.data import USGRA_CATEGORIES, rows_from_shards, usgra_rows
from ultrasam_hf.downstream.instance import InstanceArguments, run_instance_benchmark, write_results


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", default="../shared/us/usgra", help="raw USGRA folder")
    parser.add_argument("--shards", help="built shards (train/ and test/ parquet) to read instead of --raw")
    parser.add_argument("--init", nargs="+", required=True, help="UltraSam folders, or preset:<name>")
    parser.add_argument("--image-size", type=int, default=InstanceArguments.image_size)
    parser.add_argument("--steps", type=int, default=InstanceArguments.steps)
    parser.add_argument("--batch-size", type=int, default=InstanceArguments.batch_size)
    parser.add_argument("--lr", type=float, default=InstanceArguments.learning_rate)
    parser.add_argument("--max-train", type=int, help="use only the first N training images")
    parser.add_argument("--max-test", type=int, help="use only the first N test images")
    parser.add_argument("--hidden-dim", type=int, default=64, help="Mask2Former pixel decoder / query width")
    parser.add_argument("--fpn-channels", type=int, default=64)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--decoder-layers", type=int, default=3)
    parser.add_argument("--encoder-layers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/instance_segmentation_results.md")
    parser.add_argument("--note", default="", help="text placed above the table")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    categories = list(USGRA_CATEGORIES.values())
    if args.shards:
        train_rows = rows_from_shards(args.shards, "train", limit=args.max_train)
        test_rows = rows_from_shards(args.shards, "test", limit=args.max_test)
    else:
        train_rows = usgra_rows(args.raw, "train", limit=args.max_train)
        test_rows = usgra_rows(args.raw, "test", limit=args.max_test)
    recipe = InstanceArguments(image_size=args.image_size, steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed)
    head = {"hidden_dim": args.hidden_dim, "num_queries": args.queries, "decoder_layers": args.decoder_layers, "encoder_layers": args.encoder_layers, "fpn_channels": args.fpn_channels}
    start = time.time()
    records = run_instance_benchmark(args.init, train_rows, test_rows, categories, recipe, head)
    command = "python scripts/finetune_instance.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    meta = {"command": command, "recipe": vars(recipe), "head": head, "train_images": len(train_rows), "test_images": len(test_rows), "minutes": round((time.time() - start) / 60, 1)}
    intro = args.note + ("\n\n" if args.note else "") + f"Command: `{command}`\n\n"
    write_results(records, categories, meta, args.out, intro)
    print(open(args.out).read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
