"""The package and the examples type-check: `python -m mypy` with the configuration of
pyproject.toml ([tool.mypy]: files = python/ferrinet and examples, check_untyped_defs,
warn_unused_ignores, ...), as a user or CI would run it from the repository root."""

import hashlib
import pathlib
import subprocess
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_mypy_passes_on_the_package_and_the_examples():
    pytest.importorskip("mypy")
    # mypy's cache outside the repository (nothing to ignore in git), one per checkout; a
    # warm cache takes ~2 s, a cold one ~15-30 s
    tag = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    cache = pathlib.Path(tempfile.gettempdir()) / f"ferrinet-mypy-cache-{tag}"
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Success: no issues found" in output, output


def test_mypy_configuration_covers_the_package_and_the_examples():
    # the test above checks what [tool.mypy] names: make sure that is the package and the
    # examples, with untyped functions checked too
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert set(config["files"]) == {"python/ferrinet", "examples"}
    assert config["check_untyped_defs"] is True and config["warn_unused_ignores"] is True
    assert not config.get("ignore_missing_imports", False)  # only per module, in overrides
