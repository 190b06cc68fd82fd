# GraphBuilder developer commands. The README's two commands are `make lab` and `make test`.
#
#   make setup  .venv with torch (CPU) and `pip install -e .[dev]`; reruns pip only when pyproject.toml
#               changed. The editable install builds the widget bundle (see build_frontend.py).
#   make lab    setup, then JupyterLab on examples/.
#   make test   setup + system packages (graphviz, chromium), then pytest on tests/ and the notebooks.
#   make lint   ruff.
#   make docs   the API reference and op catalogue (Sphinx) in docs/_build/html.
#   make zoo    the timm model zoo (tests/test_zoo.py -m zoo) in .venv-zoo: torch 2.14.1 + torchvision + timm.
#   make test-torch214   the test suite in that venv (torch 2.14.1), beside `make test` on torch 2.13.
#
# Needs python3 (3.11+) with venv, and Node 20 + npm for the widget bundle.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.graphbuilder-setup
WIDGET := graphbuilder/widget/static/widget.js
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
SERVER_CONFIG := $(VENV)/etc/jupyter/jupyter_server_config.py
EXT_SOURCES := $(shell find extension -path extension/node_modules -prune -o -type f -print 2>/dev/null)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Containers often run as root; JupyterLab refuses that unless told.
ALLOW_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS="-n 2 -k layers"`.
PYTEST_ARGS ?=
NOTEBOOKS := $(wildcard examples/*.ipynb)

# Playwright is used as a library driving /usr/bin/chromium; never download its browsers.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup lab test lint docs system widget zoo test-torch214

setup: $(STAMP) widget $(LAB_SETTINGS) $(SERVER_CONFIG)

# Jupyter settings for this environment (binder/postBuild installs the same files on Binder): save widget
# state with notebooks, so a saved notebook reopens with its graph; kernel websockets without Nagle's delay.
$(LAB_SETTINGS): binder/overrides.json | $(STAMP)
	mkdir -p $(dir $@) && cp $< $@

$(SERVER_CONFIG): binder/jupyter_server_config.py | $(STAMP)
	mkdir -p $(dir $@) && cp $< $@

$(PY):
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }

# torch goes in first and pinned: an unpinned resolve would pull the CUDA build.
$(STAMP): pyproject.toml | $(PY)
	@command -v npm >/dev/null || { echo "npm not found: install Node 20 and npm" >&2; exit 1; }
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e ".[dev]"
	touch $@

# Rebuild the bundle when extension/ changed after the editable install.
widget: $(if $(wildcard extension/package.json),$(WIDGET))

$(WIDGET): $(EXT_SOURCES) | $(STAMP)
	$(PY) build_frontend.py

system:
	@if ! command -v dot >/dev/null || [ ! -x /usr/bin/chromium ]; then \
	  echo "installing graphviz and chromium"; \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y graphviz chromium; \
	fi

lab: setup
	$(VENV)/bin/jupyter lab $(if $(wildcard examples),examples/) $(ALLOW_ROOT)

# GB_FAST=1 makes the tutorial notebooks pick their small settings under nbval.
# Front-end unit tests run first so pytest's summary is the last line of the log.
test: setup system
	cd extension && { [ -d node_modules ] || npm ci || npm install --no-audit --no-fund; } && npm test
	GB_FAST=1 $(PY) -m pytest tests $(if $(NOTEBOOKS),--nbval-lax $(NOTEBOOKS)) $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

docs: setup
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

# --- torch 2.14.1 (its wheel here is a ~5.5 GB CUDA build that runs on the CPU; torchvision 0.29.1, and so timm,
# pairs only with it), in its own venv so the default run stays on the small CPU wheel. No editable install:
# the venv's python runs this checkout through PYTHONPATH.
ZOO_VENV := .venv-zoo
ZOO_PY := $(ZOO_VENV)/bin/python
ZOO_STAMP := $(ZOO_VENV)/.graphbuilder-zoo
PROJECT_DEPS = $(shell $(PYTHON) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
  d = p["optional-dependencies"]; print(" ".join(f"\"{x}\"" for x in p["dependencies"] + d["dev"] + d["zoo"]))')

$(ZOO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(ZOO_VENV)
	$(ZOO_PY) -m pip install torch==2.14.1 torchvision==0.29.1
	$(ZOO_PY) -m pip install $(PROJECT_DEPS)
	touch $@

zoo: $(ZOO_STAMP)
	PYTHONPATH=$(CURDIR) OMP_NUM_THREADS=1 $(ZOO_PY) -m pytest tests/test_zoo.py -m zoo $(PYTEST_ARGS)

test-torch214: $(ZOO_STAMP) widget system
	PYTHONPATH=$(CURDIR) GB_FAST=1 $(ZOO_PY) -m pytest tests $(PYTEST_ARGS)
