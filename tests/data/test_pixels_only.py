"""Stored images carry pixels only: PHI planted in any metadata slot of any source format reaches no output."""

import io
import logging

import numpy as np
import pytest
from data_fixtures import build, make_spec, save, two_blobs, ultrasound_like
from PIL import Image, PngImagePlugin, TiffImagePlugin

from ultrasam_hf.data import load_us43d
from ultrasam_hf.data.pixels_only import pixels_only, strip_jpeg, strip_png

PHI = (
    "PHI-TEXT-Doe",
    "PHI-ZTXT-Doe",
    "PHI-ITXT-Doe",
    "PHI-EXIF-Doe",
    "PHI-COM-Doe",
    "PHI-ICC-Doe",
    "PHI-XMP-Doe",
    "PHI-DESC-Doe",
    "PHI-ARTIST-Doe",
    "PHI-GIF-Doe",
    "PHI-BMP-Doe",
    "PHI^DICOM^Doe",
    "PHI-DICOM-ID",
)
ORIENTATION, ARTIST = 0x0112, 0x013B


def exif(tag_text: str) -> Image.Exif:
    planted = Image.Exif()
    planted[ARTIST] = tag_text
    planted[ORIENTATION] = 6  # "rotate 90": datasets would turn the image, not its masks
    return planted


def rgb_like(seed=0) -> np.ndarray:
    grey = ultrasound_like(seed=seed)
    return np.stack([grey, grey[::-1], 255 - grey], axis=-1)


def png_with_text(path, pixels):
    info = PngImagePlugin.PngInfo()
    info.add_text("PatientName", "PHI-TEXT-Doe")
    info.add_text("Comment", "PHI-ZTXT-Doe" * 4, zip=True)
    info.add_itxt("Author", "PHI-ITXT-Doe", lang="en", tkey="Author")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, "PNG", pnginfo=info, exif=exif("PHI-EXIF-Doe"))
    with open(path, "ab") as handle:
        handle.write(b"PHI-TEXT-Doe after IEND")


def jpeg_with_metadata(path, pixels, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(
        path,
        "JPEG",
        exif=exif("PHI-EXIF-Doe"),
        comment=b"PHI-COM-Doe",
        icc_profile=b"PHI-ICC-Doe" * 8,
        xmp=b"<x>PHI-XMP-Doe</x>",
        **options,
    )


def tiff_with_tags(path, pixels):
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[270] = "PHI-DESC-Doe"  # ImageDescription
    tags[315] = "PHI-ARTIST-Doe"  # Artist
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, "TIFF", tiffinfo=tags)


def bmp_with_trailer(path, pixels):
    save(path, pixels)
    with open(path, "ab") as handle:  # BMP has no metadata field; bytes after the pixel array are ignored by decoders
        handle.write(b"PHI-BMP-Doe")


def gif_with_comment(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, "GIF", comment=b"PHI-GIF-Doe")


def dicom_with_patient(path, pixels):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = UltrasoundImageStorage, meta.MediaStorageSOPInstanceUID
    dataset.PatientName, dataset.PatientID, dataset.InstitutionName = "PHI^DICOM^Doe", "PHI-DICOM-ID", "PHI-DICOM-ID"
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 8, 8, 7, 0
    dataset.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)


SOURCES = {  # name: (writer, pixels, suffix)
    "png-grey": (png_with_text, ultrasound_like(seed=1), ".png"),
    "png-rgb": (png_with_text, rgb_like(seed=2), ".png"),
    "jpeg-grey": (jpeg_with_metadata, ultrasound_like(seed=3), ".jpg"),
    "jpeg-rgb": (jpeg_with_metadata, rgb_like(seed=4), ".jpg"),
    "jpeg-adobe-rgb": (lambda path, pixels: jpeg_with_metadata(path, pixels, keep_rgb=True), rgb_like(seed=5), ".jpg"),
    "jpeg-progressive": (
        lambda path, pixels: jpeg_with_metadata(path, pixels, progressive=True),
        rgb_like(seed=6),
        ".jpg",
    ),
    "tiff": (tiff_with_tags, ultrasound_like(seed=7), ".tif"),
    "bmp": (bmp_with_trailer, ultrasound_like(seed=8), ".bmp"),
    "gif": (gif_with_comment, ultrasound_like(seed=9), ".gif"),
    "dicom": (dicom_with_patient, ultrasound_like(seed=10), ".dcm"),
}


def decoded(data_or_path) -> np.ndarray:
    source = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
    with Image.open(source) as image:
        return np.asarray(image.convert("RGB") if image.mode == "P" else image)


@pytest.fixture
def planted_build(tmp_path, capsys, caplog):
    raw = tmp_path / "raw"
    for name, (write, pixels, suffix) in SOURCES.items():
        write(raw / "images" / f"{name}{suffix}", pixels)
        save(raw / "masks" / f"{name}.png", two_blobs())
    for name, (write, pixels, suffix) in SOURCES.items():  # the planted strings really are in the raw files
        assert any(phi.encode() in (raw / "images" / f"{name}{suffix}").read_bytes() for phi in PHI), name
    spec = make_spec("image_mask_pairs", {"images": "images/*", "mask": "masks/{stem}.png"}, {1: "nerve", 2: "vessel"})
    with caplog.at_level(logging.DEBUG):
        manifest, rows = build(spec, raw, tmp_path / "out", progress=True)
    logs = capsys.readouterr()
    return raw, tmp_path / "out", manifest, rows, logs.out + logs.err + caplog.text


def test_no_planted_string_reaches_any_output(planted_build):
    raw, out, manifest, rows, logs = planted_build
    assert manifest["items"]["converted"] == len(SOURCES), manifest["skipped"]
    outputs = [path for path in out.rglob("*") if path.is_file()]
    assert {path.suffix for path in outputs} == {".parquet", ".json"}
    for phi in PHI:
        for path in outputs:
            assert phi.encode() not in path.read_bytes(), f"{phi} found in {path.name}"
        assert phi not in logs


def test_stored_pixels_equal_the_decoded_source(planted_build):
    raw, _, _, rows, _ = planted_build
    for row in rows:
        source = raw / row["source_files"][0]
        expected = SOURCES[row["image_id"]][1] if source.suffix == ".dcm" else decoded(source)
        np.testing.assert_array_equal(decoded(row["image"]["bytes"]), expected, err_msg=row["image_id"])
    kinds = {row["image_id"]: row["image"]["bytes"][:2] for row in rows}
    assert all(kinds[name] == b"\xff\xd8" for name in SOURCES if name.startswith("jpeg"))  # kept, not re-encoded
    assert all(kinds[name] == b"\x89P" for name in SOURCES if not name.startswith("jpeg"))


def test_png_sources_keep_only_critical_chunks(planted_build):
    _, _, _, rows, _ = planted_build
    for row in rows:
        data = row["image"]["bytes"]
        if data.startswith(b"\x89PNG"):
            assert chunk_types(data) <= {b"IHDR", b"PLTE", b"IDAT", b"IEND"}, row["image_id"]


def test_exif_orientation_no_longer_turns_loaded_images(planted_build, tmp_path, monkeypatch):
    """`datasets` rotates by EXIF orientation on decode: with it stripped, the loaded image matches its masks."""
    raw, out, _, _, _ = planted_build
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    for row in load_us43d(out, split="train"):
        assert row["image"].size == (row["width"], row["height"]) == (64, 48), row["image_id"]
        assert not row["image"].getexif(), row["image_id"]


def chunk_types(png: bytes) -> set:
    types, offset = set(), 8
    while offset < len(png):
        length = int.from_bytes(png[offset : offset + 4], "big")
        types.add(png[offset + 4 : offset + 8])
        offset += 12 + length
    return types


def test_strippers_reject_what_they_cannot_vouch_for():
    grey = ultrasound_like()
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, "PNG")
    data = buffer.getvalue()
    assert strip_png(data) == data  # nothing to drop
    broken = data[:8] + data[8:20]
    assert pixels_only(broken, grey) is None
    critical = data[:8] + (4).to_bytes(4, "big") + b"ABCD" + b"\x00" * 8 + data[8:]  # unknown critical chunk
    assert pixels_only(critical, grey) is None
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, "JPEG", comment=b"note")
    jpeg = buffer.getvalue()
    assert b"note" not in strip_jpeg(jpeg)
    assert pixels_only(jpeg[: len(jpeg) // 2], grey) is None  # truncated: no EOI
    assert pixels_only(jpeg, 255 - decoded(jpeg)) is None  # stripped bytes that do not decode to the source
    assert pixels_only(b"BM not a png", grey) is None
