"""What the downstream scripts (`scripts/finetune_classification.py`, `scripts/finetune_instance.py`) share: the
common flags and the report header."""

import argparse
import shlex
import sys
from pathlib import Path


def script_parser(script_file, doc: str, default_out: str) -> argparse.ArgumentParser:
    """Parser with the flags both scripts take (`--shards`, `--init`, `--seed`, `--out`, `--note`). `doc`: the
    script's docstring (its first paragraph is the description)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument(
        "--shards", required=True, help="build folder of `ultrasam data build <dataset> --raw ... --out DIR`"
    )
    parser.add_argument(
        "--init", nargs="+", required=True, help="UltraSam folders, shipped model names or Hub ids, or preset:<name>"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=default_out, help="Markdown table (JSON written next to it)")
    parser.add_argument("--note", default="", help="text placed above the table")
    return parser


def report_intro(script_file, argv, note: str) -> tuple[str, str]:
    """`(command, intro)`: the command line that reproduces the run, and the text above the results table."""
    argv = argv if argv is not None else sys.argv[1:]
    command = f"python scripts/{Path(script_file).name} " + " ".join(shlex.quote(a) for a in argv)
    return command, note + ("\n\n" if note else "") + f"Command: `{command}`\n\n"
