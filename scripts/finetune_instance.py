#!/usr/bin/env python
r"""Instance segmentation (USGRA nerves and vessels, carotid lumen, ...): Mask2Former on the UltraSam encoder, COCO mask AP.

    ultrasam data build usgra --raw ../shared/us/usgra --out us43d_build
    python scripts/finetune_instance.py --shards us43d_build --dataset usgra \
        --init path/to/ultrasam-lite preset:lite --image-size 256 --frozen-encoder --cache-dir cache \
        --oracle path/to/ultrasam-lite --steps 2000

`--init`: saved UltraSam folders, or `preset:<name>` for a randomly initialised encoder (the baseline in the same
run). Reads the built shards of `--dataset`: trains on the train split, checks mask AP on the validation split every
`--eval-every` steps and stops after `--patience` checks without progress (keeping the best weights), evaluates on
the test split. `--frozen-encoder` computes the encoder's features once per image (kept in `--cache-dir`, so a
rerun or an interrupted run skips them) and trains only the pyramid and the Mask2Former head; `--oracle INIT` adds
the prompted model given the ground-truth boxes (the upper bound). Mask AP with 95 % intervals from a bootstrap
over the test patients / scans. Writes a Markdown table (`--out`) and JSON next to it. Library code:
`ultrasam_hf.downstream.instance`.
"""

import sys
import time

from ultrasam_hf.data import decoded_rows, load_registry
from ultrasam_hf.downstream.instance import InstanceArguments, run_instance_benchmark, run_oracle, write_results
from ultrasam_hf.downstream.scripts import report_intro, script_parser


def parse_args(argv=None):
    parser = script_parser(__file__, __doc__, "docs/instance_segmentation_results.md")
    parser.add_argument("--dataset", default="usgra", help="slug of a built dataset with instance categories")
    parser.add_argument("--frozen-encoder", action="store_true", help="train the pyramid and head on cached features")
    parser.add_argument("--cache-dir", help="keep the frozen encoder's features here (with --frozen-encoder)")
    parser.add_argument("--oracle", nargs="*", default=[], help="UltraSam folders prompted with ground-truth boxes")
    parser.add_argument("--bootstrap-resamples", type=int, default=InstanceArguments.bootstrap_resamples)
    parser.add_argument("--train-splits", nargs="+", default=["train"], help="shard splits to train on")
    parser.add_argument(
        "--validation-split", default="validation", help="shard split whose mask AP decides when to stop ('' for none)"
    )
    parser.add_argument("--eval-every", type=int, default=100, help="steps between validation checks (0: none)")
    parser.add_argument("--patience", type=int, default=InstanceArguments.patience, help="checks without progress")
    parser.add_argument("--min-steps", type=int, help="no early stop before this step (default: half of --steps)")
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
    if args.validation_split in args.train_splits:  # before any shard is read
        raise SystemExit(f"--validation-split {args.validation_split} is also a --train-splits split")
    registry = load_registry()
    if args.dataset not in registry:
        raise SystemExit(f"unknown dataset {args.dataset!r}; built datasets have a card in dataset_cards/")
    categories = list(dict.fromkeys(registry[args.dataset].categories.values()))  # e.g. usgra: nerve, vessel
    train_rows = decoded_rows(args.shards, args.dataset, split=args.train_splits, limit=args.max_train)
    test_rows = decoded_rows(args.shards, args.dataset, split=["test"], limit=args.max_test)
    validation_rows = []
    if args.validation_split and args.eval_every > 0:
        try:
            validation_rows = decoded_rows(args.shards, args.dataset, split=[args.validation_split])
        except ValueError as error:  # the dataset was built without that split
            print(f"no validation rows ({error}): {args.steps} steps, no early stopping")
    if not train_rows or not test_rows:
        raise SystemExit(f"no {args.dataset} rows in {args.shards} for {args.train_splits} / test: build it first")
    recipe = InstanceArguments(
        image_size=args.image_size,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        frozen_encoder=args.frozen_encoder,
        bootstrap_resamples=args.bootstrap_resamples,
        eval_every=args.eval_every if validation_rows else 0,
        patience=args.patience,
        min_steps=args.steps // 2 if args.min_steps is None else args.min_steps,
    )
    head = {
        "hidden_dim": args.hidden_dim,
        "num_queries": args.queries,
        "decoder_layers": args.decoder_layers,
        "encoder_layers": args.encoder_layers,
        "fpn_channels": args.fpn_channels,
    }
    start = time.time()
    records = run_instance_benchmark(
        args.init,
        train_rows,
        test_rows,
        categories,
        recipe,
        head,
        cache_dir=args.cache_dir,
        progress=True,
        validation_rows=validation_rows,
    )
    records += [run_oracle(init, test_rows, categories, recipe) for init in args.oracle]
    command, intro = report_intro(__file__, argv, args.note)
    meta = {
        "command": command,
        "recipe": vars(recipe),
        "head": head,
        "dataset": args.dataset,
        "train_images": len(train_rows),
        "validation_images": len(validation_rows),
        "test_images": len(test_rows),
        "minutes": round((time.time() - start) / 60, 1),
    }
    write_results(records, categories, meta, args.out, intro)
    print(open(args.out).read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
