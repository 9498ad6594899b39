"""The package's documented error types (defined in `models/errors.py`, which travels with saved model folders).

    UltraSamError                      base: bad input, not a bug (`ultrasam` prints one line, exit status 1)
    ├── UsageError                     an option or setting that cannot work
    ├── ImageLoadError                 an image that cannot be used
    │   ├── ImageNotFoundError         (also a FileNotFoundError)
    │   └── ImageDecoderMissingError   (also a RuntimeError) compressed DICOM without its decoder plugin
    ├── PromptError                    a box / point / label that cannot be used
    ├── ModelLoadError                 a folder or Hub id that is not a complete UltraSam model
    │   └── ModelNotFoundError         (also a FileNotFoundError)
    └── CheckpointError                a checkpoint that cannot be read, converted or resumed
        └── CheckpointNotFoundError    (also a FileNotFoundError)

All subclass `ValueError`. `docs/reliability.md` lists what raises which.
"""

from .models.errors import (
    CheckpointError,
    CheckpointNotFoundError,
    ImageDecoderMissingError,
    ImageLoadError,
    ImageNotFoundError,
    ModelLoadError,
    ModelNotFoundError,
    PromptError,
    UltraSamError,
    UsageError,
)

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "ImageDecoderMissingError",
    "ImageLoadError",
    "ImageNotFoundError",
    "ModelLoadError",
    "ModelNotFoundError",
    "PromptError",
    "UltraSamError",
    "UsageError",
]
