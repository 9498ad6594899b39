"""`keep_freed_memory`: glibc's malloc thresholds raised once per process for CPU predictors, with an opt-out."""

import ctypes
import sys

import pytest
import torch

from ultrasam_hf import UltraSamConfig, UltraSamModel, UltraSamPredictor
from ultrasam_hf.inference import allocator


@pytest.fixture
def fresh(monkeypatch):
    """The module as in a new process: thresholds not yet set."""
    monkeypatch.setattr(allocator, "_applied", None)
    return allocator


def test_the_opt_out_keeps_glibc_defaults(fresh, monkeypatch):
    monkeypatch.setenv("ULTRASAM_KEEP_FREED_MEMORY", "0")
    monkeypatch.setattr(fresh, "_set_thresholds", lambda: pytest.fail("mallopt called despite the opt-out"))
    assert fresh.keep_freed_memory() is False


def test_thresholds_are_set_once_per_process(fresh, monkeypatch):
    calls = []
    monkeypatch.delenv("ULTRASAM_KEEP_FREED_MEMORY", raising=False)
    monkeypatch.setattr(fresh, "_set_thresholds", lambda: calls.append(1) or True)
    assert fresh.keep_freed_memory() is True
    assert fresh.keep_freed_memory() is True
    assert calls == [1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_glibc_accepts_the_thresholds(fresh):
    try:
        ctypes.CDLL(None).gnu_get_libc_version
    except AttributeError:
        pytest.skip("not glibc")
    assert fresh._set_thresholds() is True


def test_a_cpu_predictor_sets_them(monkeypatch):
    calls = []
    monkeypatch.setattr("ultrasam_hf.inference.predictor.keep_freed_memory", lambda: calls.append(1) or True)
    torch.manual_seed(0)
    UltraSamPredictor(UltraSamModel(UltraSamConfig.from_preset("tiny-lite")), device="cpu", backend="pytorch")
    assert calls == [1]
