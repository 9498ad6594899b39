"""What every bad-input test checks: a command's exit status, its one-line error, that nothing was written, and that
no patient-identifying value planted in an input reaches any output."""

import warnings
from pathlib import Path

from ultrasam_hf.cli import main

# patient-identifying values planted in inputs; none may reach any output, log or error message
PHI = {
    "PatientName": "DOE^JANE^Q",
    "PatientID": "PHI-7731-XZ",
    "PatientBirthDate": "19610203",
    "InstitutionName": "Saint Examplia Hospital",
    "ReferringPhysicianName": "HOUSE^GREGORY",
    "AccessionNumber": "ACC99887766",
    "StudyDate": "20240229",
    "OperatorsName": "SONO^GRAPHER",
}


# the broken model folders of the `bad_models` fixture (conftest)
MODEL_CASES = [
    "bert",
    "no-weights",
    "bad-json",
    "no-model-type",
    "foreign-weights",
    "other-preset-weights",
    "truncated-weights",
    "nan-weights",
    "bad-processor",
    "a-file",
    "empty-folder",
    "missing",
]


def run(argv, capsys):
    """`ultrasam ARGV` in this process -> (exit status, stdout, stderr)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # the CLI prints each warning as one line: none may be deduplicated away
        code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str, prog: str, *needles: str) -> str:
    """stderr is exactly one line, `PROG: error: ...`, containing every needle (the input's name, what to do)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    line = lines[0]
    assert line.startswith(f"{prog}: error: "), line
    assert "Traceback" not in line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def tree(folder: Path) -> dict:
    """Every file under `folder` with its size (to prove that a failed command wrote nothing)."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))} if folder.exists() else {}


def phi_strings() -> list[str]:
    """Each planted value and its parts (a name's components, a date), as they could be quoted."""
    values = set(PHI.values())
    for value in PHI.values():
        values |= {part for part in value.split("^") if len(part) >= 4}
    return sorted(values)


def assert_no_phi(*sources) -> None:
    """No planted value in any of `sources`: strings, or files / folders whose every file is read as bytes."""
    for source in sources:
        if isinstance(source, Path):
            files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
            blobs = [(str(p), p.read_bytes()) for p in files]
        else:
            blobs = [("text", str(source).encode())]
        for name, blob in blobs:
            for value in phi_strings():
                assert value.encode() not in blob, f"patient data {value!r} found in {name}"
