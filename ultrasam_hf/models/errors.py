# Copyright 2025 The ultrasam-hf authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""
The package's documented error types: every failure caused by what a user passed in (a file, a prompt, a model
folder, an option) raises one of these, with a message naming the input and what to do. Anything else escaping the
package is a bug.

Each subclasses `ValueError` (and `FileNotFoundError` / `RuntimeError` where the package raised those before), so
code written against the old exceptions keeps working. This file lives next to the model files because the image
loader and the processor, which raise them, travel as remote code with saved folders; import the types from
`ultrasam_hf.errors`.
"""


class UltraSamError(Exception):
    """Base class: bad input, not a bug. `ultrasam` prints it as one line and exits with status 1."""


class UsageError(UltraSamError, ValueError):
    """An option or setting that cannot work: conflicting flags, `--out` naming a file, an unavailable device,
    an invalid training configuration, an environment variable that is not a number."""


class ImageLoadError(UltraSamError, ValueError):
    """An image that cannot be used: corrupt or truncated file, unsupported dtype / shape / colour model, NaN
    pixels, DICOM without pixel data, more pixels than the decoding limit, an image too thin for the model."""


class ImageNotFoundError(ImageLoadError, FileNotFoundError):
    """The image file does not exist."""


class ImageDecoderMissingError(ImageLoadError, RuntimeError):
    """A compressed DICOM whose pixel-data decoder plugin is not installed (the message names the plugins)."""


class PromptError(UltraSamError, ValueError):
    """A prompt that cannot be used: non-finite or out-of-image coordinates, an empty or inverted box, unknown
    labels, mismatched shapes, no real prompt at all."""


class ModelLoadError(UltraSamError, ValueError):
    """A model folder or Hub id that does not hold a complete UltraSam model: no `config.json`, invalid JSON, a
    foreign `model_type`, no weights, or weights with missing / unexpected / mis-shaped tensors."""


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """The model folder does not exist (and the name is not a Hub id available here)."""


class CheckpointError(UltraSamError, ValueError):
    """A checkpoint that cannot be read or used: not a checkpoint, truncated, corrupt, needing unsafe unpickling,
    the wrong layout for the converter; or a training checkpoint that cannot be resumed."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file or folder does not exist."""


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
