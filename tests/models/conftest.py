"""Markers that transformers' own conftest registers, used by the vendored suite in `transformers_testing/`."""

import pytest
import torch

# The vendored files hold mixins, not tests; `test_modeling_ultrasam_common.py` imports them when their version matches.
collect_ignore = ["transformers_testing"]

MARKERS = (
    "flash_attn_test",
    "flash_attn_3_test",
    "flash_attn_4_test",
    "torch_compile_test",
    "generate",
    "is_training_test",
)


def pytest_configure(config):
    for marker in MARKERS:
        config.addinivalue_line("markers", f"{marker}: marker of transformers' test suite")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The tiny models are latency-bound: one thread is faster than several on a shared CPU, and far steadier."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
