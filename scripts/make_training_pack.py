#!/usr/bin/env python
"""Pack a split of built shards for on-device training (`pretrain.py --pack`): images pre-resized to the model's
input, masks on its low-res grid, one file.

    python scripts/make_training_pack.py --data shards/ --init MODEL_DIR --out packs/train.npz
    python scripts/make_training_pack.py --data shards/ --preset lite --codec webp --quality 90 --out packs/gpu.npz

PNG keeps the pixels exact; WebP makes a pack small enough to carry to a remote GPU (~8 KB per 256 px image at
quality 90, mean absolute error ~1 grey level).
"""

import argparse
import json
import sys
from pathlib import Path

from ultrasam_hf.models.transforms import low_res_size
from ultrasam_hf.training.pack import CODECS, build_pack
from ultrasam_hf.training.trainer import load_model_config, make_image_processor


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", required=True, help="shard folder(s) (<slug>/<split>/*.parquet)")
    parser.add_argument("--out", required=True, help="pack file (.npz)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--datasets", nargs="+", help="dataset slugs (default: all)")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--init", help="the model folder the pack is for (its processor and sizes)")
    model.add_argument("--preset", help="or an UltraSam preset (lite, vit-b, tiny-lite, tiny)")
    parser.add_argument("--codec", choices=CODECS, default="png")
    parser.add_argument("--quality", type=int, default=90, help="WebP quality")
    parser.add_argument("--max-images-per-dataset", type=int, help="seeded random subset of larger datasets")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = load_model_config(args.init, args.preset)
    summary = build_pack(
        args.data,
        args.out,
        make_image_processor(config, args.init),
        low_res_size(config),
        split=args.split,
        datasets=args.datasets,
        codec=args.codec,
        quality=args.quality,
        max_images_per_dataset=args.max_images_per_dataset,
        seed=args.seed,
    )
    size_mb = Path(args.out).stat().st_size / 2**20
    print(json.dumps({k: v for k, v in summary.items() if k != "keys"}, indent=1))
    print(f"{args.out}: {len(summary['keys'])} images, {summary['instances']} instances, {size_mb:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
