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
Public image loading: PIL images, arrays, image files and DICOM to `HxWx3 uint8` RGB frames.

The implementation lives in `ultrasam_hf/models/image_loading.py`, next to the image processor that uses it,
so that folders saved with `save_pretrained` carry it as remote code.
"""

from .models.image_loading import load_frames, read_dicom


__all__ = ["load_frames", "read_dicom"]
