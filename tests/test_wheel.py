"""One wheel for every CPython >= 3.9: the extension is built against Python's stable ABI
(PyO3's abi3-py39), so the wheel is tagged cp39-abi3 (`make test-pythons` installs that one
wheel into every CPython 3.9-3.13 on the machine and smoke-tests it)."""

import pathlib
import re
import subprocess
import sys

import ferrinet

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))


def test_the_installed_extension_uses_the_stable_abi():
    # CPython loads a stable-ABI module under the ".abi3" suffix; a version-specific build is
    # named "_core.cpython-311-x86_64-linux-gnu.so".
    assert pathlib.Path(ferrinet._core.__file__).name.startswith("_core.abi3."), (
        ferrinet._core.__file__
    )


def test_maturin_builds_one_cp39_abi3_wheel(tmp_path):
    # After `make build` the release artifacts are there: this only packages them (seconds).
    maturin = pathlib.Path(sys.executable).with_name("maturin")
    result = subprocess.run(
        [str(maturin), "build", "--release", "--quiet", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    wheels = [p.name for p in tmp_path.glob("*.whl")]
    assert len(wheels) == 1, wheels
    assert re.fullmatch(
        r"ferrinet-[0-9.]+-cp39-abi3-(manylinux|linux)[A-Za-z0-9_.]*\.whl", wheels[0]
    ), wheels
    from test_pythons import WHEEL_TAG  # the tag make test-pythons insists on

    assert WHEEL_TAG.match(wheels[0])
