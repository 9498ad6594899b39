"""Run the training scripts in a child process (offline, one thread, this checkout on PYTHONPATH)."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_script(
    args: list, env_extra=None, launcher=("accelerate", "launch", "--num_processes", "1", "--cpu"), timeout=600
):
    """Run scripts/pretrain.py through `accelerate launch`; returns the CompletedProcess (raises on failure)."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        **(env_extra or {}),
    }
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    command = [accelerate, *launcher[1:], str(REPO / "scripts" / "pretrain.py"), *map(str, args)]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
        )
    return result


def run_python(args: list, timeout=600, script=False):
    """Run scripts/pretrain.py (or, with `script`, the script named first) with the plain interpreter."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    target = [str(REPO / args[0])] if script else [str(REPO / "scripts" / "pretrain.py")]
    command = [sys.executable, *target, *map(str, args[1:] if script else args)]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
        )
    return result
