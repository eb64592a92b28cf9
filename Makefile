# One Makefile for everything; `make test` and `make run` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CORE := engine/_core.pyx engine/_core.pxd engine/_risk.pyx engine/_risk.pxd engine/_codes.py \
	ledger/_kernels.pyx ledger/_kernels.pxd setup.py
DATA := ../shared/data/market

.PHONY: all install build test test-long run replay proto bench lint clean

all: build

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The build requirements first: the editable install then compiles the core in place.
	$(PY) -m pip install --quiet cython numpy setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev]' --no-build-isolation
	touch $(STAMP)

install: $(STAMP)

build: $(STAMP) engine/_core.so.stamp

engine/_core.so.stamp: $(CORE) $(STAMP)
	$(PY) setup.py --quiet build_ext --inplace
	touch $@

# The default suite: well inside CI's limit on two cores.
test: build
	$(PY) -m pytest -n 2 -q

# Longer property-based runs and the full-day replays.
test-long: build
	HYPOTHESIS_PROFILE=long $(PY) -m pytest -q -m "slow or not slow"

# The main job: the whole exchange on this machine (private NATS and PostgreSQL unless NATS_URL /
# DATABASE_URL are set), resumable from .clearline/. Ctrl-C stops it.
run: build
	$(VENV)/bin/clearline run

# Real market data through the matching engine, checked against the exchange's own book.
replay: build
	$(VENV)/bin/clearline replay lobster \
	  $(DATA)/AAPL_2012-06-21_34200000_57600000_message_10.first999.csv \
	  $(DATA)/AAPL_2012-06-21_34200000_57600000_orderbook_10.first999.csv
	$(VENV)/bin/clearline replay mbo \
	  $(DATA)/ESM4_glbx-mdp3_2024-05-08T00-00-00_2024-05-08T00-00-02.mbo.dbn.zst

# Regenerate code from proto/ (a test fails when it is stale).
proto: $(STAMP)
	$(PY) proto/generate.py

bench: build
	$(PY) -m benchmarks.bench_book --json --chart benchmarks/results/bench_book.svg \
	  > benchmarks/results/bench_book.json
	$(PY) -m benchmarks.bench_shard > benchmarks/results/bench_shard.json
	$(PY) -m benchmarks.bench_gateway --json > benchmarks/results/bench_gateway.json
	$(PY) -m benchmarks.bench_ledger --json > benchmarks/results/bench_ledger.json
	$(PY) -m benchmarks.bench_compliance --json > benchmarks/results/bench_compliance.json

lint: build
	$(VENV)/bin/ruff check .
	PATH=$(VENV)/bin:$$PATH cython-lint --max-line-length 100 engine/*.pyx engine/*.pxd ledger/*.pyx ledger/*.pxd
	$(VENV)/bin/mypy engine gateway ledger compliance benchmarks

clean:
	rm -rf build engine/_core.c engine/_core*.so engine/_core.so.stamp engine/_codes.pxi \
	engine/_risk.c engine/_risk*.so ledger/_kernels.c ledger/_kernels*.so
