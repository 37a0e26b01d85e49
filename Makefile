# Quick start: `make demo` runs exq on a small example, `make test` runs the tests.
# Both create the local virtualenv .venv with the pinned dependencies first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DVC_VENV := .venv-dvc

.PHONY: demo test venv dvc bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# The real DVC, in its own virtualenv, for the interoperability tests and benchmarks.
dvc: $(DVC_VENV)/.installed

$(DVC_VENV)/.installed: requirements-dvc.txt
	$(PYTHON) -m venv $(DVC_VENV)
	$(DVC_VENV)/bin/python -m pip install -q --upgrade pip
	$(DVC_VENV)/bin/python -m pip install -q -r requirements-dvc.txt
	touch $@

demo: venv
	PATH="$(abspath $(VENV))/bin:$$PATH" bash examples/demo.sh

test: venv dvc
	EXQ_TEST_DVC="$(abspath $(DVC_VENV))/bin/dvc" $(PY) -m pytest -q

bench: venv dvc
	EXQ_BENCH_DVC="$(abspath $(DVC_VENV))/bin/dvc" $(PY) bench/repro_bench.py
	EXQ_BENCH_DVC="$(abspath $(DVC_VENV))/bin/dvc" $(PY) bench/exp_show_bench.py

clean:
	rm -rf $(VENV) $(DVC_VENV)
