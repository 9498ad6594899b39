#!/usr/bin/env python
"""UltraSam (pre-)training. Run with `accelerate launch scripts/pretrain.py ...` or plain `python scripts/pretrain.py ...`.

    accelerate launch scripts/pretrain.py --preset tiny --data shards/ --output-dir runs/tiny --max-steps 100
    accelerate launch --config_file scripts/accelerate_configs/cpu_2proc.yaml scripts/pretrain.py --config run.yaml

All logic lives in `ultrasam_hf.training`; `--help` lists every flag (docs/training_usage.md explains them).
"""

import sys

from ultrasam_hf.training.config import parse_args
from ultrasam_hf.training.trainer import train


def main(argv=None) -> int:
    result = train(parse_args(argv))
    return 0 if result else 1


if __name__ == "__main__":
    sys.exit(main())
