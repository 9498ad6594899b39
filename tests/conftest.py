import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_US = REPO.parent / "shared" / "us"


@pytest.fixture(scope="session")
def shared_us() -> Path:
    """The real ultrasound data in ../shared/us; tests that need it skip cleanly when it is absent."""
    if not SHARED_US.is_dir():
        pytest.skip(f"real ultrasound data not found at {SHARED_US} (see ../shared/us/README.md)")
    return SHARED_US


@pytest.fixture(scope="session")
def load_script():
    """Loader of a script of `scripts/` as a module, by file path (`scripts/` is not a package)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"_script_{name}", REPO / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
