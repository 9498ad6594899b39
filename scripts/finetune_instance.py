#!/usr/bin/env python
r"""Instance segmentation on USGRA (nerves and vessels): Mask2Former on the UltraSam encoder, COCO mask mAP.

    ultrasam data build usgra --raw ../shared/us/usgra --out us43d_build
    python scripts/finetune_instance.py --shards us43d_build --init path/to/ultrasam-lite preset:lite \
        --image-size 128 --steps 300

`--init`: saved UltraSam folders, or `preset:<name>` for a randomly initialised encoder (the baseline in the same
run). Reads the built `usgra` shards: trains on the train and validation splits (the release's `images/` +
`masks/`), evaluates on the test split (its `test/`); writes a Markdown table (`--out`) and JSON next to it.
Library code: `ultrasam_hf.downstream.instance`.
"""

import sys
import time

from ultrasam_hf.data import decoded_rows, load_registry
from ultrasam_hf.downstream.instance import InstanceArguments, run_instance_benchmark, write_results
from ultrasam_hf.downstream.scripts import report_intro, script_parser


def parse_args(argv=None):
    parser = script_parser(__file__, __doc__, "docs/instance_segmentation_results.md")
    parser.add_argument("--train-splits", nargs="+", default=["train", "validation"], help="shard splits to train on")
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
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    categories = list(dict.fromkeys(load_registry()["usgra"].categories.values()))  # nerve, vessel (label values 1, 2)
    train_rows = decoded_rows(args.shards, "usgra", split=args.train_splits, limit=args.max_train)
    test_rows = decoded_rows(args.shards, "usgra", split=["test"], limit=args.max_test)
    recipe = InstanceArguments(
        image_size=args.image_size, steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed
    )
    head = {
        "hidden_dim": args.hidden_dim,
        "num_queries": args.queries,
        "decoder_layers": args.decoder_layers,
        "encoder_layers": args.encoder_layers,
        "fpn_channels": args.fpn_channels,
    }
    start = time.time()
    records = run_instance_benchmark(args.init, train_rows, test_rows, categories, recipe, head)
    command, intro = report_intro(__file__, argv, args.note)
    meta = {
        "command": command,
        "recipe": vars(recipe),
        "head": head,
        "train_images": len(train_rows),
        "test_images": len(test_rows),
        "minutes": round((time.time() - start) / 60, 1),
    }
    write_results(records, categories, meta, args.out, intro)
    print(open(args.out).read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
