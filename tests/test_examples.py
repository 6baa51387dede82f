"""Every script in examples/ runs, succeeds and prints what it claims.

The tests are parametrized over ``examples/*.py``, so a new example is tested as soon as it
exists. Each example declares the line its output must contain with one or more comments

    # expect: <regular expression>

and exits non-zero when its own claim fails (an accuracy, an agreement); both are checked
here. Examples run in a subprocess from an empty temporary directory, with TMPDIR pointing
into it, so whatever they write (their default output is a temporary directory) is removed
with it and nothing lands in the repository.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
TIMEOUT = 180  # seconds per example; each takes a few (importing torch is the slowest part)

#: The optional packages each example needs (skipped, not failed, when one is missing).
NEEDS = {
    "sklearn_grid_search.py": ["sklearn"],
    "pytorch_handoff.py": ["torch", "safetensors"],
    "onnx_export.py": ["onnx", "onnxruntime"],
    "plots.py": ["matplotlib"],
    "larger_than_memory.py": ["sklearn"],
    "scipy_lbfgs.py": ["scipy"],
}


def expectations(path):
    patterns = re.findall(r"^# expect: (.+)$", path.read_text(), flags=re.MULTILINE)
    assert patterns, (
        f"examples/{path.name} has no '# expect: <regex>' line saying what its output shows"
    )
    return patterns


def run_example(path, tmp_path, *args):
    env = dict(
        os.environ,
        TMPDIR=str(tmp_path),
        TEMP=str(tmp_path),
        TMP=str(tmp_path),
        MPLBACKEND="Agg",
        PYTHONHASHSEED="0",
    )
    return subprocess.run(
        [sys.executable, str(path), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def repository_files():
    """The files an example could have dropped into the repository by mistake."""
    return {p.relative_to(ROOT) for p in ROOT.iterdir()} | {
        p.relative_to(ROOT) for p in (ROOT / "examples").iterdir()
    }


def test_there_are_examples():
    names = {p.name for p in EXAMPLES}
    assert {
        "xor.py",
        "regression.py",
        "digits.py",
        "sklearn_grid_search.py",
        "save_load.py",
        "pytorch_handoff.py",
        "plots.py",
        "onnx_export.py",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs_and_shows_its_claim(path, tmp_path):
    for module in NEEDS.get(path.name, []):
        pytest.importorskip(module)
    patterns = expectations(path)
    before = repository_files()
    work = tmp_path / "work"
    work.mkdir()
    result = run_example(path, work)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"examples/{path.name} failed:\n{output[-4000:]}"
    for pattern in patterns:
        assert re.search(pattern, result.stdout), (
            f"examples/{path.name}: no line matches {pattern!r} in its output:\n"
            f"{result.stdout[-4000:]}"
        )
    assert repository_files() == before, "the example wrote into the repository"


def test_plots_example_writes_its_pictures_where_it_is_told(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "pictures" / "nested"
    result = run_example(ROOT / "examples" / "plots.py", tmp_path, "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["boundary.png", "digits.png", "history.png"]
    for png in out.iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out) in result.stdout


def test_an_example_that_fails_its_claim_exits_non_zero(tmp_path):
    # the harness must be able to see a failure: an example whose check fails
    bad = tmp_path / "bad.py"
    bad.write_text("# expect: never printed\nimport sys\nsys.exit('FAILED: on purpose')\n")
    result = run_example(bad, tmp_path)
    assert result.returncode != 0 and "FAILED: on purpose" in result.stderr
