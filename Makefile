# tfstream developer commands. `make test` is exactly what CI runs (see .ci/run).

PYTHON ?= python3
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
PG_CTL_GLOB ?= /usr/lib/postgresql/*/bin/pg_ctl

VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv demo test lint format bench lock clean distclean postgres-deps

# Quiet TensorFlow's C++ start-up logging; an explicit value in the environment wins.
demo test bench: export TF_CPP_MIN_LOG_LEVEL ?= 2

help:
	@echo "make venv      create/refresh .venv with tfstream[test] pinned by constraints.txt"
	@echo "make demo      run 'tfstream demo'"
	@echo "make test      run the test suite (what CI runs; PYTEST_ARGS=... to pass options)"
	@echo "make lint      ruff check + ruff format --check"
	@echo "make format    apply ruff's safe fixes and format the code"
	@echo "make bench     run the benchmarks (python -m benchmarks)"
	@echo "make lock      regenerate constraints.txt in a fresh temporary virtualenv"
	@echo "make clean     remove caches and build artifacts (distclean also removes .venv)"

venv: $(STAMP)

# Reinstalls only when pyproject.toml or constraints.txt is newer than the stamp.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c constraints.txt -e '.[test]'
	@touch $@

demo: venv
	$(BIN)/tfstream demo

test: venv postgres-deps
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS) tests

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix --exit-zero .
	$(BIN)/ruff format .

bench: venv
	$(BIN)/python -m benchmarks

# Resolve pyproject.toml's dependencies from scratch and pin the result.
lock:
	@set -e; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip --disable-pip-version-check install -e '.[test]'; \
	{ echo "# Pinned versions of every package that \`pip install -e '.[test]'\` installs, for"; \
	  echo "# reproducible installs: \`make venv\` runs \`pip install -c constraints.txt -e '.[test]'\`."; \
	  echo "# Do not edit by hand. Regenerate with \`make lock\` after changing dependencies in"; \
	  echo "# pyproject.toml: it resolves them in a fresh temporary virtualenv ($$("$$tmp/venv/bin/python" -V))"; \
	  echo "# and writes \`pip freeze --exclude-editable\`."; \
	  "$$tmp/venv/bin/python" -m pip freeze --exclude-editable; } > "$$tmp/constraints.txt"; \
	mv "$$tmp/constraints.txt" constraints.txt; \
	echo "constraints.txt: $$(grep -vc '^#' constraints.txt) pins"

# PostgreSQL server binaries, for the tests marked `postgres` (ts.sql against a real server that
# tfstream.testing.postgres_server starts as the `postgres` user). Installs Debian's postgresql package when no pg_ctl is under /usr/lib/postgresql/*/bin;
# a no-op when it is already there, or when not running as root (those tests then skip).
postgres-deps:
	@if ls $(PG_CTL_GLOB) >/dev/null 2>&1; then \
	  :; \
	elif [ "$$(id -u)" -ne 0 ]; then \
	  echo "postgres-deps: no pg_ctl under /usr/lib/postgresql/*/bin and not root; not installing" >&2; \
	else \
	  apt-get update && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql; \
	fi

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
