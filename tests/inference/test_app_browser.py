"""`ultrasam app` in a real headless Chromium (Debian's `chromium`, driven by the `playwright` package): upload a real
ultrasound image, click, see the mask, download it. Skipped, with the reason, when Gradio, Playwright or the browser is
missing; `make test-browser` installs them and runs this file. With `ULTRASAM_APP_SCREENSHOT=path.png` the phantom test
saves a screenshot of the page (`docs/app.png` is one: a generated phantom, no real scan).
"""

import importlib.util
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = os.environ.get("ULTRASAM_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CAROTID_SCAN = "202201121752220024VAS"  # a test-split scan of the data build (the default model never saw it)
TIMEOUT_MS = 180_000  # a busy 2-core CI machine encodes a frame in seconds to tens of seconds


def _missing() -> str | None:
    for module, install in (("gradio", "pip install ultrasam-hf[app]"), ("playwright", "pip install playwright")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed ({install}; or `make test-browser`)"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; or `make test-browser`)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


@pytest.fixture(scope="module")
def app_url():
    from ultrasam_hf.inference.app import build_app, theme

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = build_app()  # the default model
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, theme=theme())
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,  # a fresh --user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            accept_downloads=True,
            viewport={"width": 1280, "height": 1000},
        )
        yield context
        context.close()


@pytest.fixture
def page(browser, app_url):
    page = browser.new_page()
    external = []
    page.on("request", lambda request: None if request.url.startswith(app_url) else external.append(request.url))
    page.goto(app_url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
    page.wait_for_selector("#upload input[type=file]", state="attached", timeout=TIMEOUT_MS)
    yield page
    page.close()
    assert not [url for url in external if not url.startswith(("data:", "blob:"))], f"the page fetched {external}"


def upload(page, path):
    page.set_input_files("#upload input[type=file]", str(path))
    wait_for_status(page, "no mask yet")


def wait_for_status(page, text):
    page.wait_for_function(
        "text => document.querySelector('#status').innerText.includes(text)", arg=text, timeout=TIMEOUT_MS
    )
    return page.inner_text("#status")


def click_pixel(page, x, y):
    """Click image pixel (x, y) of the displayed frame (the image is scaled to fit, aspect kept)."""
    image = page.locator("#canvas img")
    box = image.bounding_box()
    width, height = image.evaluate("element => [element.naturalWidth, element.naturalHeight]")
    scale = min(box["width"] / width, box["height"] / height)
    left = box["x"] + (box["width"] - width * scale) / 2
    top = box["y"] + (box["height"] - height * scale) / 2
    page.mouse.click(left + (x + 0.5) * scale, top + (y + 0.5) * scale)


def download(page, suffix, folder: Path) -> Path:
    """Export, then download the exported file whose name ends with `suffix`."""
    page.click("#export")
    anchor = page.locator(f"#downloads a[download$='{suffix}']")
    anchor.wait_for(timeout=TIMEOUT_MS)
    with page.expect_download(timeout=TIMEOUT_MS) as event:
        anchor.click()
    target = folder / event.value.suggested_filename
    event.value.save_as(target)
    return target


def dice(a, b) -> float:
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def carotid_frames(shared_us, count):
    root = shared_us / "common-carotid-artery"
    paths = sorted(
        (root / "US images").glob(f"{CAROTID_SCAN}_slice_*.png"), key=lambda p: int(p.stem.rsplit("_", 1)[1])
    )
    if len(paths) < count:
        pytest.skip(f"the carotid scan {CAROTID_SCAN} is not in {root}")
    truths = [np.array(Image.open(root / "Expert mask images" / p.name).convert("L")) > 127 for p in paths[:count]]
    return paths[:count], truths


def test_click_a_carotid_artery_and_download_its_mask(page, shared_us, tmp_path):
    (path,), (truth,) = carotid_frames(shared_us, 1)
    upload(page, path)
    rows, cols = np.nonzero(truth)
    click_pixel(page, cols.mean(), rows.mean())  # one positive click in the lumen
    status = wait_for_status(page, " px (your prompt")
    mask = np.array(Image.open(download(page, "_mask.png", tmp_path))) > 0
    assert mask.shape == truth.shape
    assert f"mask {mask.sum()} px" in status
    assert dice(mask, truth) > 0.7


def test_cine_volume_slider_and_propagation(page, shared_us, tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    paths, truths = carotid_frames(shared_us, 2)
    cine = np.stack([np.array(Image.open(p).convert("L")) for p in paths])
    sitk.WriteImage(sitk.GetImageFromArray(cine), str(tmp_path / "carotid_cine.nii.gz"))
    upload(page, tmp_path / "carotid_cine.nii.gz")
    assert "frame 1 of 2" in page.inner_text("#status")
    page.get_by_label("box: two corners").check()
    rows, cols = np.nonzero(truths[0])
    click_pixel(page, cols.min(), rows.min())
    wait_for_status(page, "opposite corner")
    click_pixel(page, cols.max(), rows.max())
    wait_for_status(page, " px (your prompt")
    page.click("#propagate")
    wait_for_status(page, "propagated through 2 frames")
    page.locator("#frame input[type=range]").press("ArrowRight")  # to frame 2 of 2
    status = wait_for_status(page, "frame 2 of 2")
    assert "propagated" in status
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(download(page, ".nii.gz", tmp_path))))
    assert labels.shape == cine.shape
    assert dice(labels[0] > 0, truths[0]) > 0.7 and dice(labels[1] > 0, truths[1]) > 0.5
    coco = json.loads(download(page, "_masks.json", tmp_path).read_text())
    assert [a["source"] for a in coco["annotations"]] == ["prompt", "propagated"]


def test_dicom_box_prompt(page, tmp_path):
    data = pytest.importorskip("pydicom.data")
    path = data.get_testdata_file("US1_UNCR.dcm")
    if path is None:
        pytest.skip("pydicom-data is not installed (pip install pydicom-data)")
    upload(page, path)
    page.get_by_label("box: two corners").check()
    click_pixel(page, 92, 160)  # the lymph node of `ultrasam demo`
    wait_for_status(page, "opposite corner")
    click_pixel(page, 304, 290)
    status = wait_for_status(page, " px (your prompt")
    assert int(re.search(r"mask (\d+) px", status).group(1)) > 5000


def test_click_a_phantom_lesion(page, tmp_path):
    """A generated frame (`parity_image`: speckle, a bright layer, a dark round lesion): one click in the lesion gives
    its mask. Needs no data, so it runs wherever the browser does; its screenshot is `docs/app.png`."""
    from ultrasam_hf.export.onnx_export import parity_image

    size = 400
    Image.fromarray(parity_image(size)).save(tmp_path / "phantom.png")
    yy, xx = np.mgrid[:size, :size]
    lesion = (yy - size * 0.55) ** 2 + (xx - size * 0.45) ** 2 < (size * 0.18) ** 2  # as `parity_image` draws it
    upload(page, tmp_path / "phantom.png")
    click_pixel(page, size * 0.45, size * 0.55)
    wait_for_status(page, " px (your prompt")
    mask = np.array(Image.open(download(page, "_mask.png", tmp_path))) > 0
    assert dice(mask, lesion) > 0.8
    if os.environ.get("ULTRASAM_APP_SCREENSHOT"):
        page.screenshot(path=os.environ["ULTRASAM_APP_SCREENSHOT"])
