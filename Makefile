# Quick start: `make demo` runs exq on a small example, `make test` runs the tests,
# `make lint` the checks (ruff, mypy, import contracts) that must pass before landing.
# Both create the local virtualenv .venv with the pinned dependencies first.

SHELL := bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DVC_VENV := .venv-dvc
DVCLIVE_VENVS := .venv-dvclive

.PHONY: demo test lint lint-tools venv dvc dvclive ray remote optuna browser sshd bench clean help-pages

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# Ray (the exq[ray] extra) in .venv: the ray executor's tests start a local head node.
ray: $(VENV)/.ray-installed

$(VENV)/.ray-installed: $(VENV)/.installed requirements-ray.txt
	$(PY) -m pip install -q -r requirements-ray.txt
	touch $@

# Data remotes' file systems (exq[s3]) and the S3 server their tests start (moto), in .venv.
remote: $(VENV)/.remote-installed

$(VENV)/.remote-installed: $(VENV)/.ray-installed requirements-remote.txt
	$(PY) -m pip install -q -r requirements-remote.txt
	touch $@

# Optuna (the exq[optuna] extra) in .venv, for studies and their tests.
optuna: $(VENV)/.optuna-installed

$(VENV)/.optuna-installed: $(VENV)/.installed requirements-optuna.txt
	$(PY) -m pip install -q -r requirements-optuna.txt
	touch $@

# The checks' tools, pinned, in .venv.
lint-tools: $(VENV)/.lint-installed

$(VENV)/.lint-installed: $(VENV)/.installed requirements-lint.txt
	$(PY) -m pip install -q -r requirements-lint.txt
	touch $@

# mypy and import-linter see the package as it installs: engine/ as exq/engine and so on
# (neither follows setuptools' package-dir), so they read a copy of the tree laid out so.
TYPECHECK := build/typecheck

lint: lint-tools optuna  # optuna: mypy reads its types
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/exq
	cp exq/__init__.py exq/py.typed $(TYPECHECK)/exq/
	for folder in engine live daemon cli; do \
		cp -r $$folder $(TYPECHECK)/exq/$$folder; \
	done
	cd $(TYPECHECK) && $(abspath $(VENV))/bin/mypy --config-file $(abspath pyproject.toml) \
		--cache-dir $(abspath .mypy_cache) -p exq | sed -E 's#^exq/(engine|live|daemon|cli)/#\1/#'; \
		exit $${PIPESTATUS[0]}
	cd $(TYPECHECK) && $(abspath $(VENV))/bin/lint-imports --no-cache $(abspath pyproject.toml)

# exq's help pages, stored so that --help answers without importing typer (a test keeps
# them equal to what typer renders): rewrite them after changing a command or an option.
help-pages: venv
	$(PY) -m exq.cli.help_render

# The real DVC, in its own virtualenv, for the interoperability tests and benchmarks.
dvc: $(DVC_VENV)/.installed

$(DVC_VENV)/.installed: requirements-dvc.txt
	$(PYTHON) -m venv $(DVC_VENV)
	$(DVC_VENV)/bin/python -m pip install -q --upgrade pip
	$(DVC_VENV)/bin/python -m pip install -q -r requirements-dvc.txt
	touch $@

# Real dvclive releases (requirements-dvclive.txt), one virtualenv each, for the tests
# that run dvclive scripts under exq. Built once; rebuilt when the list changes.
dvclive: $(DVCLIVE_VENVS)/.installed

$(DVCLIVE_VENVS)/.installed: requirements-dvclive.txt
	rm -rf $(DVCLIVE_VENVS) && mkdir -p $(DVCLIVE_VENVS)
	grep -v '^#' requirements-dvclive.txt | while read -r name reqs; do \
		[ -n "$$name" ] || continue; \
		$(PYTHON) -m venv $(DVCLIVE_VENVS)/$$name && \
		$(DVCLIVE_VENVS)/$$name/bin/python -m pip install -q $$reqs || exit 1; \
	done
	touch $@

demo: venv
	PATH="$(abspath $(VENV))/bin:$$PATH" bash examples/demo.sh

# Headless Chromium (Debian's package) for the browser tests of the plots page and the
# live report: installed where missing when running as root (CI); elsewhere those tests skip.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; \
	else \
		echo "chromium missing and not root: the browser tests will be skipped"; \
	fi

# OpenSSH's server for the ssh:// remote tests, which start their own on 127.0.0.1
# (policy-rc.d: the package's own service is never started).
sshd:
	@command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && \
		apt-get update -q >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server >/dev/null; \
		rm -f /usr/sbin/policy-rc.d; \
	else \
		echo "sshd missing and not root: the ssh remote tests will be skipped"; \
	fi

test: venv ray remote optuna dvc dvclive browser sshd
	EXQ_TEST_DVC="$(abspath $(DVC_VENV))/bin/dvc" EXQ_TEST_DVCLIVE="$(abspath $(DVCLIVE_VENVS))" \
		$(PY) -m pytest -q

bench: venv ray remote dvc optuna
	EXQ_BENCH_DVC="$(abspath $(DVC_VENV))/bin/dvc" $(PY) bench/startup_bench.py
	EXQ_BENCH_DVC="$(abspath $(DVC_VENV))/bin/dvc" $(PY) bench/repro_bench.py
	EXQ_BENCH_DVC="$(abspath $(DVC_VENV))/bin/dvc" $(PY) bench/exp_show_bench.py
	EXQ_BENCH_DVC="$(abspath $(DVC_VENV))/bin/dvc" $(PY) bench/queue_bench.py
	EXQ_BENCH_DVC="$(abspath $(DVC_VENV))/bin/dvc" $(PY) bench/data_bench.py
	$(PY) bench/ray_bench.py
	$(PY) bench/sweep_bench.py
	EXQ_BENCH_DVC="$(abspath $(DVC_VENV))/bin/dvc" $(PY) bench/remote_bench.py

clean:
	rm -rf $(VENV) $(DVC_VENV) $(DVCLIVE_VENVS)
