"""`ultrasam` console entry point.

Each area of the package owns its sub-commands in its own `cli.py` exposing `register(subparsers)`; this file
only wires them together, so adding a command never touches another area's code.

Errors: a failure caused by the input (the package's `UltraSamError`s, and `ValueError`, `OSError`, `ImportError`,
`MemoryError`) is printed as one line `ultrasam <command>: error: ...` with exit status 1; anything else is a bug,
printed as one line asking for a report, exit status 70. `--debug` (or `ULTRASAM_DEBUG=1`) shows the traceback
instead. Warnings are printed as one line `ultrasam <command>: warning: ...`.
"""

import argparse
import importlib
import os
import sys
import warnings
from pathlib import Path

from .models.errors import UltraSamError, UsageError

# (module, what it provides) — imported lazily so `ultrasam --help` stays fast and optional extras stay optional.
COMMAND_MODULES = (
    "ultrasam_hf.inference.cli",  # segment, demo
    "ultrasam_hf.convert.cli",  # convert
    "ultrasam_hf.data.cli",  # data build / data info
    "ultrasam_hf.evaluation.cli",  # eval
    "ultrasam_hf.export.cli",  # export onnx
)
DEBUG_ENV = "ULTRASAM_DEBUG"
EXIT_ERROR, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 1, 2, 70, 130
# what bad input raises: reported as one line (any other exception type is a bug)
INPUT_ERRORS = (UltraSamError, ValueError, OSError, ImportError, MemoryError)
DEBUG_HELP = f"show the full traceback of an error (also ${DEBUG_ENV}=1)"


def _add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """`--debug` on `parser` and every sub-command below it, so that it can go anywhere on the line."""
    if "--debug" not in parser._option_string_actions:
        parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _add_debug_flag(subparser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ultrasam", description="UltraSam: promptable ultrasound segmentation.")
    parser.add_argument("--debug", action="store_true", default=False, help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                continue  # that area is not part of this install
            raise
        module.register(subparsers)
    _add_debug_flag(parser)
    return parser


def check_output_folder(path, option: str = "--out") -> Path:
    """`path` as an output folder that can be created or written, checked before any work: [`UsageError`] naming
    it when it is an existing file, lies under a file, or is not writable. Nothing is created here."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} '{folder}' is an existing file: give a folder (it is created when missing)")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option} '{folder}' cannot be created: '{existing}' is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} '{folder}' cannot be written: no write permission on '{existing}'")
    return folder


def debug_requested(args=None) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes")


def one_line(text: str) -> str:
    """Messages are printed on one line: nested reasons joined with ' | '."""
    return " | ".join(part.strip() for part in str(text).strip().splitlines() if part.strip())


def run_reporting_errors(prog: str, func, *args, debug: bool = False, quiet: bool = False) -> int:
    """Call `func(*args)`; return its exit status, or print any exception as one line (`debug`: re-raise it;
    `quiet`: print nothing) and return 1 for bad input, 70 for a bug, 130 for Ctrl-C. Warnings are printed as one
    line each."""
    show_warning = warnings.showwarning

    def report(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr)

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        report(f"{prog}: warning: {one_line(message)}")

    warnings.showwarning = one_line_warning
    try:
        return int(func(*args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        report(f"{prog}: interrupted")
        return EXIT_INTERRUPTED
    except INPUT_ERRORS as error:
        if debug:
            raise
        reason = one_line(error) or type(error).__name__
        if isinstance(error, MemoryError):
            reason = f"out of memory{': ' + reason if str(error) else ''} (a smaller input or --max-pixels helps)"
        elif isinstance(error, OSError) and not isinstance(error, UltraSamError) and error.filename:
            reason = f"{error.strerror or reason}: '{error.filename}'"
        report(f"{prog}: error: {reason}")
        return EXIT_ERROR
    except Exception as error:
        if debug:
            raise
        report(
            f"{prog}: internal error ({type(error).__name__}: {one_line(error)[:300]}): this is a bug; rerun with "
            f"--debug (or {DEBUG_ENV}=1) for the traceback and report it"
        )
        return EXIT_BUG
    finally:
        warnings.showwarning = show_warning


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    prog = " ".join(["ultrasam", args.command] + ([args.data_command] if getattr(args, "data_command", None) else []))
    return run_reporting_errors(prog, args.func, args, debug=debug_requested(args))


if __name__ == "__main__":
    sys.exit(main())
