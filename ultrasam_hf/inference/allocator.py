"""glibc's malloc hands large freed blocks back to the operating system: blocks over its mmap threshold at once, and
the top of the heap once more than the trim threshold is free there. A prompt allocates and frees 1–4 MB
activations, so each call touches them as fresh pages, and on the CPU those page faults are a large share of a
prompt: a box on the lite model's prompt side took 19.8 ms in float32 PyTorch with glibc's defaults and 12.1 ms with
`keep_freed_memory()` (2 threads, `docs/decoder_benchmark.md`). ONNX Runtime keeps its own arena and needs none of
this. jemalloc or tcmalloc (`LD_PRELOAD`) does the same for the whole process.

`UltraSamPredictor` calls `keep_freed_memory()` for the CPU, once per process; `ULTRASAM_KEEP_FREED_MEMORY=0` keeps
glibc's defaults.
"""

import ctypes
import logging
import os
import sys

logger = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
MMAP_THRESHOLD = 32 * 2**20  # glibc's own upper bound for its dynamic threshold
TRIM_THRESHOLD = 64 * 2**20  # at most this much freed memory stays with the process

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap threshold to 32 MiB and its trim threshold to 64 MiB for this process, so that freed
    activations are reused instead of faulted in again. Returns whether the thresholds are set: False outside glibc
    (macOS, Windows, musl) or with `ULTRASAM_KEEP_FREED_MEMORY=0`."""
    global _applied
    if _applied is None:
        _applied = os.environ.get("ULTRASAM_KEEP_FREED_MEMORY", "1") != "0" and _set_thresholds()
        if _applied:
            logger.info(
                "glibc malloc: mmap threshold 32 MiB, trim threshold 64 MiB (ULTRASAM_KEEP_FREED_MEMORY=0: off)"
            )
    return _applied


def _set_thresholds() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # glibc's mallopt returns 1 on success; musl's is a stub that returns 0
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1


__all__ = ["keep_freed_memory"]
