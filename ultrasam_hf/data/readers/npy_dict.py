"""Reading `.npy` files that hold a pickled dict of arrays (FASS) without unpickling arbitrary code.

`np.load(allow_pickle=True)` would run whatever the pickle names; here the pickle may only rebuild numpy arrays,
dtypes and scalars (dicts, lists, strings and numbers need no class): anything else is refused as a bad input.
"""

import pickle
import warnings
from pathlib import Path

import numpy as np

from .base import SkipItem

ALLOWED = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {("numpy", "ndarray"), ("numpy", "dtype")}


class ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")
        with warnings.catch_warnings():  # numpy 2 keeps numpy.core.* importable for old pickles, with a warning
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def read_npy_dict(path: Path) -> dict:
    """The dict pickled in a 0-d object `.npy` (what `np.save(path, a_dict)` writes)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(handle)
            if dtype != np.dtype(object) or shape != ():
                raise SkipItem(f"unknown layout: {path.name} holds a {dtype} array {shape}, not a pickled dict")
            value = ArrayOnlyUnpickler(handle).load()
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise SkipItem(f"unreadable array: {path.name}: {error}") from None
    value = value.item() if isinstance(value, np.ndarray) and value.shape == () else value
    if not isinstance(value, dict):
        raise SkipItem(f"unknown layout: {path.name} holds a pickled {type(value).__name__}, not a dict")
    return value
