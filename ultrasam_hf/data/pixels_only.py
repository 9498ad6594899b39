"""Stored images carry pixels only: what a PNG or JPEG source says besides its pixels is dropped, without re-encoding.

Text chunks (tEXt, zTXt, iTXt), EXIF, ICC profiles, XMP, comments and private chunks can hold patient names, ids and
dates, so a shard must never carry them. Re-encoding every image would cost more than the rest of the build, so the
source's own compressed pixel data is kept and everything else is left out:

- PNG: only the critical chunks IHDR, PLTE, IDAT and IEND (they alone decide the pixels); nothing after IEND.
- JPEG: SOI, the frame, tables, scans and EOI; APPn and COM segments are dropped, except that a JFIF (APP0) or Adobe
  (APP14) marker, which tells decoders the colour transform, is replaced by a fixed minimal one carrying only that.
  The result is decoded once and compared with the source pixels; on any difference the caller re-encodes.

Every other source (TIFF, BMP, GIF, DICOM, volumes, videos) is decoded and re-encoded as PNG by the caller. Dropping
EXIF also keeps rows consistent: `datasets` rotates an image by its EXIF orientation on decode, the masks do not.
"""

import io
import struct

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_CRITICAL = (b"IHDR", b"PLTE", b"IDAT", b"IEND")

JPEG_SOI, JPEG_EOI, JPEG_SOS = 0xD8, 0xD9, 0xDA
JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length
JPEG_APP0, JPEG_APP14, JPEG_COM = 0xE0, 0xEE, 0xFE
# A JFIF 1.01 header with no density and no thumbnail; an Adobe header keeping only the colour transform byte.
MINIMAL_JFIF = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


class NotPixelsOnly(ValueError):
    """The bytes are not a well-formed PNG / JPEG this module can strip: the caller re-encodes the decoded pixels."""


def pixels_only(data: bytes, pixels: np.ndarray) -> bytes | None:
    """PNG / JPEG source bytes -> the same image with pixel data only, or None when they cannot be kept as is.

    `pixels` is the decoded source (uint8 [H, W] or [H, W, 3]); a stripped JPEG is checked against it.
    """
    try:
        if data.startswith(PNG_SIGNATURE):
            return strip_png(data)
        if data[:2] == b"\xff\xd8":
            stripped = strip_jpeg(data)
            with Image.open(io.BytesIO(stripped)) as image:
                return stripped if np.array_equal(np.asarray(image), pixels) else None
    except (NotPixelsOnly, OSError, SyntaxError, ValueError):
        return None
    return None


def strip_png(data: bytes) -> bytes:
    kept, offset = [PNG_SIGNATURE], len(PNG_SIGNATURE)
    while offset + 12 <= len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        end = offset + 12 + length
        if end > len(data):
            raise NotPixelsOnly(f"PNG chunk {kind!r} runs past the end of the file")
        if kind in PNG_CRITICAL:
            kept.append(data[offset:end])
        elif not kind[:1].islower():  # an unknown critical chunk may change the pixels: do not guess
            raise NotPixelsOnly(f"unknown critical PNG chunk {kind!r}")
        if kind == b"IEND":
            return b"".join(kept)
        offset = end
    raise NotPixelsOnly("PNG without IEND")


def strip_jpeg(data: bytes) -> bytes:
    if data[:2] != b"\xff\xd8":
        raise NotPixelsOnly("not a JPEG")
    kept, offset = [b"\xff\xd8"], 2
    while offset < len(data):
        if data[offset] != 0xFF:
            raise NotPixelsOnly(f"JPEG marker expected at byte {offset}")
        marker = data[offset + 1] if offset + 1 < len(data) else None
        if marker == 0xFF:  # fill bytes before a marker
            offset += 1
            continue
        if marker is None:
            break
        if marker == JPEG_EOI:
            kept.append(b"\xff\xd9")
            return b"".join(kept)
        if marker in JPEG_STANDALONE:
            kept.append(data[offset : offset + 2])
            offset += 2
            continue
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        end = offset + 2 + length
        if length < 2 or end > len(data):
            raise NotPixelsOnly(f"JPEG segment 0x{marker:02X} runs past the end of the file")
        body = data[offset + 4 : end]
        if marker == JPEG_APP0 and body.startswith(b"JFIF\x00"):
            kept.append(segment(JPEG_APP0, MINIMAL_JFIF))
        elif marker == JPEG_APP14 and body.startswith(b"Adobe") and len(body) >= 12:
            kept.append(segment(JPEG_APP14, b"Adobe\x00\x64\x00\x00\x00\x00" + body[11:12]))
        elif not (JPEG_APP0 <= marker <= 0xEF or marker == JPEG_COM):
            kept.append(data[offset:end])
        offset = end
        if marker == JPEG_SOS:
            scan_end = entropy_end(data, offset)
            kept.append(data[offset:scan_end])
            offset = scan_end
    raise NotPixelsOnly("JPEG without EOI")


def segment(marker: int, body: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(body) + 2) + body


def entropy_end(data: bytes, offset: int) -> int:
    """Index of the first marker after entropy-coded data (0xFF00 stuffing and RSTn belong to the scan)."""
    while True:
        offset = data.find(b"\xff", offset)
        if offset < 0 or offset + 1 >= len(data):
            raise NotPixelsOnly("JPEG scan without an end")
        following = data[offset + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            offset += 1 if following == 0xFF else 2
            continue
        return offset
