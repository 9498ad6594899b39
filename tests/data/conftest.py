import pytest
from data_fixtures import SHARED_US


@pytest.fixture
def shared_us():
    if not SHARED_US.is_dir():
        pytest.skip(f"shared ultrasound data not found at {SHARED_US} (tests on real data need ../shared/us)")
    return SHARED_US
