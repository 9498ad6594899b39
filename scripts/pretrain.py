#!/usr/bin/env python
"""UltraSam (pre-)training. Run with `accelerate launch scripts/pretrain.py ...` or plain `python scripts/pretrain.py ...`.

    accelerate launch scripts/pretrain.py --preset tiny --data shards/ --output-dir runs/tiny --max-steps 100
    accelerate launch --config_file scripts/accelerate_configs/cpu_2proc.yaml scripts/pretrain.py --config run.yaml

All logic lives in `ultrasam_hf.training`; `--help` lists every flag (docs/training_usage.md explains them). Bad
settings and inputs are reported as one line before anything is created (`--debug` or ULTRASAM_DEBUG=1: the
traceback).
"""

import os
import sys

from ultrasam_hf.cli import debug_requested, run_reporting_errors
from ultrasam_hf.training.config import parse_args, validate_config
from ultrasam_hf.training.trainer import train


def run(argv) -> int:
    config = parse_args(argv)
    validate_config(config)  # before anything is created: a bad setting is one line, the output folder untouched
    return 0 if train(config) else 1


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or debug_requested()
    argv = [arg for arg in argv if arg != "--debug"]
    # under `accelerate launch` every rank fails alike: rank 0 says why (run with `accelerate launch -q` to keep
    # Accelerate from adding its own traceback of the failed process)
    quiet = int(os.environ.get("RANK", "0")) != 0
    return run_reporting_errors("pretrain.py", run, argv, debug=debug, quiet=quiet)


if __name__ == "__main__":
    sys.exit(main())
