PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# Two stamps: the base dependencies alone (enough for the demo), and everything (tests, notebooks,
# ports, benchmarks). Installing everything also satisfies the base stamp.
BASE_STAMP := $(VENV)/.installed-base
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch is pinned to the CPU build that the machines carry; users get a plain `torch` requirement.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[torch,tensorflow,notebooks,bench,dev,sparse,ipopt]" "torch==2.13.0"
	touch $(STAMP) $(BASE_STAMP)

$(BASE_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $(BASE_STAMP)

install: $(STAMP)

demo: $(BASE_STAMP)
	$(PY) examples/demo.py

lint: $(STAMP)
	$(PY) -m ruff check pytree_minimize tests benchmarks examples
	$(PY) -m ruff format --check pytree_minimize tests benchmarks examples

typecheck: $(STAMP)
	$(PY) -m mypy

# One BLAS thread per test process: two pytest workers share two cores, and scipy's small
# vector operations only contend with more.
test: lint typecheck
	OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -n 2 --timeout 900 --durations=15

bench: $(STAMP)
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/sharded.py

clean:
	rm -rf $(VENV)
