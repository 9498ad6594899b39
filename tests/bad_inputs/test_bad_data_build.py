"""`ultrasam data build` / `data info` given what does not exist: one error line, exit status 1, nothing written.
(What a build records about items it cannot convert is the builder's: tests/data.)"""

import pytest
from bad_input_helpers import run


def error_line(err: str, prog: str) -> str:
    """Exactly one `PROG: error:` line; any other stderr line is a one-line warning (e.g. about a dataset card)."""
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(f"{prog}: error: ")]
    assert len(errors) == 1, err
    assert all(line.startswith(f"{prog}: warning: ") for line in lines if line not in errors), err
    assert "Traceback" not in err
    return errors[0]


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["nope-set", "--raw", "{raw}"], ["unknown dataset 'nope-set'", "known:"]),
        (["bus-bra", "--raw", "{raw}/absent"], ["raw folder of bus-bra not found", "absent"]),
        (["bus-bra", "--raw", "{raw}/file.txt"], ["raw folder of bus-bra not found", "file.txt"]),
        ([], ["give one DATASET with --raw DIR, or --all --raw-root ROOT"]),
        (["--all"], ["--all needs --raw-root"]),
    ],
)
def test_data_build_of_what_does_not_exist(argv, needles, tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "file.txt").write_text("x")
    argv = [a.replace("{raw}", str(raw)) for a in argv]
    code, _, err = run(["data", "build", *argv, "--out", tmp_path / "out", "--no-progress"], capsys)
    assert code == 1
    line = error_line(err, "ultrasam data build")
    for needle in needles:
        assert needle in line
    assert not (tmp_path / "out").exists()


def test_data_info_of_a_folder_without_manifest(tmp_path, capsys):
    code, _, err = run(["data", "info", tmp_path / "nothing"], capsys)
    assert code == 1
    assert "no dataset manifest in" in error_line(err, "ultrasam data info")
