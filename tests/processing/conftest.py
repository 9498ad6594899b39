"""Fixtures for the processing tests: small synthetic DICOM datasets, built in memory, without patient tags."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for dicom_fixtures

from dicom_fixtures import make_dicom_dataset  # noqa: E402


@pytest.fixture
def make_dicom():
    """`make_dicom(pixels, photometric, frames=1, **tags)` → a native US `pydicom.Dataset`."""
    pytest.importorskip("pydicom")
    return make_dicom_dataset
