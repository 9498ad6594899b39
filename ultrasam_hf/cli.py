"""`ultrasam` console entry point.

Each area of the package owns its sub-commands in its own `cli.py` exposing `register(subparsers)`; this file
only wires them together, so adding a command never touches another area's code.
"""

import argparse
import importlib
import sys

# (module, what it provides) — imported lazily so `ultrasam --help` stays fast and optional extras stay optional.
COMMAND_MODULES = (
    "ultrasam_hf.inference.cli",  # segment, demo
    "ultrasam_hf.convert.cli",  # convert
    "ultrasam_hf.data.cli",  # data build / data info
    "ultrasam_hf.evaluation.cli",  # eval
    "ultrasam_hf.export.cli",  # export onnx
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ultrasam", description="UltraSam: promptable ultrasound segmentation.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                continue  # that area is not part of this install
            raise
        module.register(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as error:
        print(f"ultrasam {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
