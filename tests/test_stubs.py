"""The type stubs match the compiled module (`mypy.stubtest`, as pydantic-core does)."""

import subprocess
import sys


def test_core_stub_matches_the_extension():
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "ferrinet._core"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
