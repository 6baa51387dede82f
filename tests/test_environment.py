"""The test environment itself: under `make test` (and so in CI) every optional package the
suite exercises must be importable, so that no check is silently skipped for lack of it.

Many suites start with ``pytest.importorskip(...)`` so that a developer without, say, PyTorch
can still run the rest. `make test` sets ``FERRINET_REQUIRE_EXTRAS=1``; then a missing package
is a failure here, not a row of quiet skips.
"""

import importlib.util
import os

import pytest

# Every package a suite importorskips, and what needs it.
EXTRAS = {
    "sklearn": "ferrinet.sklearn, estimator checks, interop",
    "distributed": "tests/test_dask.py",
    "pandas": "estimator checks with DataFrames",
    "safetensors": "PyTorch reading ferrinet's files",
    "torch": "loading files into nn.Sequential, pytorch_handoff example",
    "onnx": "ferrinet.onnx export",
    "onnxruntime": "running exported graphs",
    "matplotlib": "ferrinet.plot, the demo's pictures",
    "mypy": "stubtest and mypy on the package and examples",
    "tqdm": "fit(verbose=1)'s bar, tests/test_display.py",
    "ipywidgets": "tqdm's notebook bar, tests/test_display.py",
    "nbclient": "running docs/tutorial.ipynb, tests/test_notebook.py",
    "ipykernel": "the kernel the notebook runs in",
    "mkdocs": "make docs, tests/test_docs.py",
    "material": "the docs site's theme (mkdocs-material)",
    "mkdocstrings_handlers": "the API reference (mkdocstrings[python])",
    "mkdocs_jupyter": "the notebook as a docs page",
}


@pytest.mark.skipif(
    os.environ.get("FERRINET_REQUIRE_EXTRAS") != "1",
    reason="only under `make test` (FERRINET_REQUIRE_EXTRAS=1), which installs every extra",
)
@pytest.mark.parametrize("module", sorted(EXTRAS))
def test_every_extra_the_suite_uses_is_installed(module):
    # find_spec, not import: importing torch and friends here would make the test process
    # hundreds of MB larger for every test after this one (the suites import what they use).
    if importlib.util.find_spec(module) is None:  # pragma: no cover - the point of the test
        pytest.fail(f"{module} ({EXTRAS[module]}) is not installed; run `make setup`")
