import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_US = Path(__file__).resolve().parents[1].parent / "shared" / "us"


@pytest.fixture(scope="session")
def shared_us() -> Path:
    """The real ultrasound data in ../shared/us; tests that need it skip cleanly when it is absent."""
    if not SHARED_US.is_dir():
        pytest.skip(f"real ultrasound data not found at {SHARED_US} (see ../shared/us/README.md)")
    return SHARED_US
