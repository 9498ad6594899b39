"""The built wheel is a complete install: it carries every dataset card (formerly found only in a checkout, so
`load_registry()` raised `FileNotFoundError` after `pip install`), `py.typed` and the shipped model."""

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CARDS = sorted(path.parent.name for path in (REPO / "dataset_cards").glob("*/README.md"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("building the wheel here needs setuptools in this environment")
    out = tmp_path_factory.mktemp("wheel")
    # from a copy of the tracked files: setuptools builds in the source tree, and a stale build/ there would leak into
    # later wheels
    source = out / "source"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout.decode()
    for name in filter(None, tracked.split("\0")):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_symlink():
            target.symlink_to(os.readlink(REPO / name))
        elif (REPO / name).is_file():  # a file deleted in the work tree but not yet in git is left out
            shutil.copy2(REPO / name, target)
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        str(source),
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(out),
    ]
    subprocess.run(command, check=True, cwd=out, capture_output=True)
    (path,) = out.glob("ultrasam_hf-*.whl")
    return path


def test_wheel_carries_the_cards_and_py_typed(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert len(CARDS) > 40
    assert {f"ultrasam_hf/dataset_cards/{slug}/README.md" for slug in CARDS} <= names
    assert "ultrasam_hf/py.typed" in names and "ultrasam_hf/assets/ultrasam-lite-us/config.json" in names
    assert "ultrasam_hf/assets/ultrasam-nano-us/model.safetensors" in names
    for name in names:  # the cards are a copy of the top-level folder, byte for byte
        if name.startswith("ultrasam_hf/dataset_cards/"):
            expected = (REPO / "dataset_cards" / name.removeprefix("ultrasam_hf/dataset_cards/")).read_bytes()
            assert zipfile.ZipFile(wheel).read(name) == expected, name


@pytest.mark.slow
def test_fresh_venv_install_lists_every_card(wheel, tmp_path):
    """`pip install` of the wheel into a new venv (no system site-packages, core dependencies only), then
    `ultrasam data info` from outside the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    import torch

    # torch first, the version of this environment (as `make install` pins it), so that pip does not pick a newer
    # CUDA build with its GPU libraries
    torch_pin = f"torch=={torch.__version__.split('+')[0]}"
    subprocess.run([str(python), "-m", "pip", "install", "-q", torch_pin], check=True, timeout=1800)
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=1800)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "ULTRASAM_CARDS_DIR")}
    result = subprocess.run(
        [str(venv / "bin" / "ultrasam"), "data", "info"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert listed == set(CARDS) - {"us-43d"}  # the umbrella card holds the vocabulary, not a dataset
