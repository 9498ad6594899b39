"""The data layer with the core install only: `import ultrasam_hf.data`, the registry and `ultrasam data info` work
without the extras (OpenCV, h5py, pycocotools, SimpleITK, pydicom, matplotlib), which only building needs."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
for name in ("cv2", "h5py", "pycocotools", "SimpleITK", "pydicom", "matplotlib"):
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
import ultrasam_hf.data
from ultrasam_hf.data import load_registry
print("registry", len(load_registry()))
from ultrasam_hf.cli import main
code = main(["data", "info"])
try:
    ultrasam_hf.data.build_dataset
except ImportError as error:
    print("build needs", error.name)
sys.exit(code)
"""


def test_data_layer_imports_without_the_extras():
    cards = [path for path in (REPO / "dataset_cards").glob("*/README.md") if path.parent.name != "us-43d"]
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"registry {len(cards)}" in result.stdout
    assert "bus-bra" in result.stdout and "usgra" in result.stdout
    assert "build needs" in result.stdout  # building does need them, and says which
