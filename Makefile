# The two commands of the README:
#   make demo   sets up a fresh clone with only what the demo needs (virtualenv, NumPy, matplotlib,
#               maturin: requirements-demo.txt), builds the extension and runs the demo
#   make test   installs the rest on top (requirements-dev.txt), makes the release build and runs
#               every test (cargo test + pytest, which also runs the notebook and builds the docs)
#   make lint   rustfmt, clippy -D warnings, ruff check and ruff format --check (CI runs it first)
#   make docs   the HTML site (MkDocs) into site/
#   make test-pythons  one abi3 wheel, installed and smoke-tested in every CPython 3.9-3.13 found
# Everything is installed from the project's own files into .venv; nothing global is needed
# beyond Python 3.9+ and a Rust toolchain.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Two stamps: the demo's few packages, then the test suite's on top of them.
DEMO_STAMP := $(VENV)/.deps-demo
STAMP      := $(VENV)/.deps-installed

.PHONY: demo test test-busy lint setup build build-demo bench docs test-pythons clean

demo: build-demo
	$(PY) -m ferrinet.demo

test: build
	cargo test -p ferrinet-core --release
	FERRINET_REQUIRE_EXTRAS=1 $(PY) -m pytest -q -rs

# The same tests with a busy-loop process on every core (BUSY_PER_CPU per core), started here
# and killed when the tests end, however they end: timed tests must hold on a busy machine.
BUSY_PER_CPU ?= 1
test-busy: build
	@hogs=""; n=$$(( $$(nproc) * $(BUSY_PER_CPU) )); \
	for i in $$(seq $$n); do sh -c 'while :; do :; done' & hogs="$$hogs $$!"; done; \
	trap 'kill $$hogs' EXIT INT TERM; \
	echo "test-busy: $$n busy-loop processes:$$hogs"; \
	cargo test -p ferrinet-core --release && FERRINET_REQUIRE_EXTRAS=1 $(PY) -m pytest -q -rs

# Formatting and lint, Rust and Python; CI runs it before the tests (.ci/run), and so does the
# pre-commit hook (.pre-commit-config.yaml). Any warning fails it.
lint: $(STAMP)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) tools/function_lengths.py --top 0 --check 80

bench: build
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benches/bench_sgd.py

setup: $(STAMP)

$(DEMO_STAMP): requirements-demo.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-demo.txt
	touch $(DEMO_STAMP)

$(STAMP): requirements-dev.txt $(DEMO_STAMP)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# Always rebuilt: cargo and maturin are incremental, so an up-to-date build takes seconds.
# The tests and the benchmarks use the release profile (thin LTO, one codegen unit: the fastest
# code, and the slowest build); the demo uses the `demo` profile (Cargo.toml: no LTO, 16 codegen
# units), which takes about a fifth less CPU and uses both cores (README, "The two commands").
build: $(STAMP)
	$(VENV)/bin/maturin develop --release --quiet

build-demo: $(DEMO_STAMP)
	$(VENV)/bin/maturin develop --profile demo --quiet

# The site (mkdocs.yml) into site/: README, docs/*.md, the tutorial notebook, the API reference
# (read from the sources and _core.pyi: no build needed).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# One wheel (abi3: every CPython >= 3.9), a fresh venv per CPython found, a smoke test in each.
test-pythons: $(STAMP)
	$(PY) tools/test_pythons.py

clean:
	rm -rf $(VENV) target site
