"""Exact (pixel sha256) and near (perceptual hash) duplicate detection, written with numpy/scipy only.

Near duplicates: 64-bit pHash (DCT of a 32x32 grey thumbnail, top-left 8x8 against its median) within a Hamming
distance `threshold`. The index splits the hash into `threshold + 1` bands: two hashes that differ in at most
`threshold` bits agree on at least one band (pigeonhole), so lookups touch only same-band candidates.
"""

import hashlib

import numpy as np
from PIL import Image
from scipy.fft import dctn

POLICIES = ("keep", "drop-exact", "drop-near")


def grey_thumbnail(image: np.ndarray, size: tuple) -> np.ndarray:
    grey = Image.fromarray(image)
    if grey.mode != "L":
        grey = grey.convert("L")
    return np.asarray(grey.resize(size, Image.BILINEAR), dtype=np.float32)


def pixel_sha256(image: np.ndarray) -> str:
    digest = hashlib.sha256(f"{image.shape}".encode())
    digest.update(np.ascontiguousarray(image))  # the array's buffer itself: no copy of the pixels
    return digest.hexdigest()


def phash(image: np.ndarray) -> int:
    coefficients = dctn(grey_thumbnail(image, (32, 32)), norm="ortho")[:8, :8].ravel()
    bits = coefficients > np.median(coefficients[1:])  # DC term left out of the median: it only tracks brightness
    return bits_to_int(bits)


def bits_to_int(bits: np.ndarray) -> int:
    """First bit most significant."""
    return int.from_bytes(np.packbits(np.asarray(bits, dtype=bool)).tobytes(), "big") >> (-len(bits) % 8)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class DuplicateIndex:
    """Rows seen so far, in build order; `check` says whether a new row duplicates an earlier one."""

    def __init__(self, threshold: int = 4):
        if not 0 <= threshold < 32:
            raise ValueError(f"near-duplicate threshold must be in [0, 32), got {threshold}")
        self.threshold = threshold
        self.band_bits = 64 // (threshold + 1)
        self.exact = {}
        self.bands = [{} for _ in range(threshold + 1)]
        self.rows = []

    def band_values(self, value: int) -> list:
        mask = (1 << self.band_bits) - 1
        return [(value >> (band * self.band_bits)) & mask for band in range(self.threshold + 1)]

    def check(self, ref: dict, sha: str, perceptual: int) -> tuple:
        """-> ("exact" | "near" | None, earlier ref, distance) for the first earlier match."""
        if sha in self.exact:
            return "exact", self.rows[self.exact[sha]][0], 0
        best = None
        for band, value in enumerate(self.band_values(perceptual)):
            for index in self.bands[band].get(value, ()):
                distance = hamming(perceptual, self.rows[index][1])
                if distance <= self.threshold and (best is None or (distance, index) < best):
                    best = (distance, index)
        if best is not None:
            return "near", self.rows[best[1]][0], best[0]
        return None, None, None

    def add(self, ref: dict, sha: str, perceptual: int) -> None:
        index = len(self.rows)
        self.rows.append((ref, perceptual))
        self.exact.setdefault(sha, index)
        for band, value in enumerate(self.band_values(perceptual)):
            self.bands[band].setdefault(value, []).append(index)


def should_drop(kind: str | None, policy: str) -> bool:
    if policy not in POLICIES:
        raise ValueError(f"duplicates policy must be one of {POLICIES}, got {policy!r}")
    return (kind == "exact" and policy in ("drop-exact", "drop-near")) or (kind == "near" and policy == "drop-near")
