"""Evaluate UltraSam folders on built US-43d shards: the same as `ultrasam eval` (see `--help`).

    python scripts/evaluate.py --model litemedsam_hf --data us43d_build --datasets bus-bra --split test --out eval_out
"""

import sys

from ultrasam_hf.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
