# moesuite: `make demo` and `make test` work on a fresh machine with only python3 + pip.
# Each target creates .venv on first use and installs every package in packages/ (editable).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PACKAGES := $(sort $(dir $(wildcard packages/*/pyproject.toml)))
DOMAINS := $(filter-out packages/core/,$(PACKAGES))
STAMP  := $(VENV)/.installed

.PHONY: help venv demo test bench lint clean

help:
	@echo "make demo   - set up .venv and run the quick tour of every installed domain"
	@echo "make test   - set up .venv and run the whole test suite"
	@echo "make bench  - run the benchmarks (long; writes benchmarks/*/results)"
	@echo "make lint   - ruff"

venv: $(STAMP)

$(STAMP): $(wildcard packages/*/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -e "packages/core[triton,dev]" $(foreach p,$(DOMAINS),-e $(p))
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/moesuite demo

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	THP_MEM_ALLOC_ENABLE=1 $(PY) benchmarks/core/bench_moe_layer.py
	@for f in benchmarks/*/bench_*.py; do \
	  case $$f in benchmarks/core/*) ;; *) echo "== $$f"; $(PY) $$f || exit 1;; esac; \
	done

lint: $(STAMP)
	$(VENV)/bin/ruff check packages tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache runs
