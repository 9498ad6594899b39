import pytest
from hub_helpers import FolderHub


@pytest.fixture
def folder_hub(tmp_path):
    return FolderHub(tmp_path / "hub")
