"""Markers that transformers' own conftest registers, used by the vendored suite in `transformers_testing/`."""

MARKERS = ("flash_attn_test", "flash_attn_3_test", "flash_attn_4_test", "torch_compile_test", "generate", "is_training_test")


def pytest_configure(config):
    for marker in MARKERS:
        config.addinivalue_line("markers", f"{marker}: marker of transformers' test suite")
