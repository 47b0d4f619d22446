# Any Python 3.11 or newer (pyproject's `requires-python`): the first of these that runs and is
# new enough, the version the test suite runs on first. Override with `make PYTHON=/path/to/python`.
PYTHON_CANDIDATES := python3.11 python3.12 python3.13 python3
SUPPORTED := import sys; sys.exit(sys.version_info < (3, 11))
ifeq ($(origin PYTHON), undefined)
PYTHON := $(firstword $(foreach p,$(PYTHON_CANDIDATES),$(shell $(p) -c '$(SUPPORTED)' >/dev/null 2>&1 && echo $(p))))
endif
VENV ?= .venv
PY := $(VENV)/bin/python
# Two stamps: the base dependencies alone (enough for the demo), and everything (tests, notebooks,
# ports, benchmarks, the documentation site). Installing everything also satisfies the base stamp.
BASE_STAMP := $(VENV)/.installed-base
STAMP := $(VENV)/.installed

.PHONY: demo test docs lint typecheck bench install clean

$(PY):
	@test -n "$(PYTHON)" || { echo "No Python 3.11 or newer found (tried: $(PYTHON_CANDIDATES)). Install one, or run make PYTHON=/path/to/python3.11"; exit 1; }
	@$(PYTHON) -c '$(SUPPORTED)' || { echo "$(PYTHON) is $$($(PYTHON) --version 2>&1); pytree_minimize needs Python 3.11 or newer"; exit 1; }
	@echo "Creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version 2>&1))"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch is pinned to the CPU build that the machines carry; users get a plain `torch` requirement.
$(STAMP): pyproject.toml | $(PY)
	@echo "Installing everything into $(VENV) ($$($(PY) --version)): about 4 GB, mostly torch and TensorFlow"
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[torch,tensorflow,notebooks,bench,dev,docs,sparse,ipopt]" "torch==2.13.0"
	touch $(STAMP) $(BASE_STAMP)

$(BASE_STAMP): pyproject.toml | $(PY)
	@echo "Installing the base dependencies (JAX, SciPy) into $(VENV) ($$($(PY) --version))"
	$(PY) -m pip install --quiet -e .
	touch $(BASE_STAMP)

install: $(STAMP)

demo: $(BASE_STAMP)
	$(PY) examples/demo.py

lint: $(STAMP)
	$(PY) -m ruff check pytree_minimize tests benchmarks examples docs/_ext
	$(PY) -m ruff format --check pytree_minimize tests benchmarks examples docs/_ext

typecheck: $(STAMP)
	$(PY) -m mypy

# One BLAS thread per test process: two pytest workers share two cores, and scipy's small
# vector operations only contend with more.
test: lint typecheck
	OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -n 2 --timeout 900 --durations=15

# The documentation site, into site/; warnings are errors (mkdocs.yml sets `strict`, and so does
# the flag). The notebooks are rendered from their saved outputs, not executed. Material for
# MkDocs prints a notice about MkDocs 2 on every build; it is not a warning about this site.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

bench: $(STAMP)
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/sharded.py

clean:
	rm -rf $(VENV) site
