# The two commands of the README:
#   make demo   sets up a fresh clone (virtualenv, dependencies, release build) and runs the demo
#   make test   sets up the same way and runs every test (cargo test + pytest)
#   make lint   rustfmt, clippy -D warnings, ruff check and ruff format --check (CI runs it first)
# Everything is installed from the project's own files into .venv; nothing global is needed
# beyond Python 3.9+ and a Rust toolchain.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.deps-installed

.PHONY: demo test lint setup build bench clean

demo: build
	$(PY) -m ferrinet.demo

test: build
	cargo test -p ferrinet-core --release
	FERRINET_REQUIRE_EXTRAS=1 $(PY) -m pytest -q

# Formatting and lint, Rust and Python; CI runs it before the tests (.ci/run), and so does the
# pre-commit hook (.pre-commit-config.yaml). Any warning fails it.
lint: $(STAMP)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: build
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benches/bench_sgd.py

setup: $(STAMP)

$(STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# Always rebuilt: cargo and maturin are incremental, so an up-to-date build takes seconds.
build: $(STAMP)
	$(VENV)/bin/maturin develop --release --quiet

clean:
	rm -rf $(VENV) target
