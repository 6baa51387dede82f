"""`make test-pythons`: one wheel for every CPython >= 3.9, checked on each one found.

Builds ferrinet's wheel once (``maturin build --release``; PyO3's stable ABI, ``abi3-py39``, makes
it a single ``cp39-abi3`` wheel), then for every CPython 3.9-3.13 on the machine (pyenv's
versions, and ``python3.X`` on PATH) creates a fresh venv, installs that same wheel (pip fetches
NumPy for that version) and runs ``tools/smoke_test.py`` in it: train, predict, save/load,
gradcheck, and the scikit-learn wrapper where scikit-learn installs for that version.

Usage: ``python tools/test_pythons.py [--wheel PATH] [--versions 3.9 3.13] [--keep DIR]``.
Exits non-zero if the wheel's tag is not abi3 or any version fails; prints a table at the end.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
VERSIONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
WHEEL_TAG = re.compile(r"^ferrinet-[^-]+-cp39-abi3-[A-Za-z0-9_.]+\.whl$")


def find_pythons(versions):
    """{"3.9": path, ...}: the newest pyenv build of each version, else python3.X on PATH."""
    found = {}
    root = pathlib.Path(os.environ.get("PYENV_ROOT", pathlib.Path.home() / ".pyenv")) / "versions"
    for version in versions:
        candidates = []
        if root.is_dir():
            for d in root.iterdir():
                m = re.fullmatch(rf"{re.escape(version)}\.(\d+)", d.name)
                exe = d / "bin" / "python3"
                if m and exe.exists():
                    candidates.append((int(m.group(1)), str(exe)))
        if candidates:
            found[version] = max(candidates)[1]
            continue
        on_path = shutil.which(f"python{version}")
        if on_path:
            found[version] = on_path
    return found


def build_wheel(out: pathlib.Path) -> pathlib.Path:
    maturin = pathlib.Path(sys.executable).with_name("maturin")
    cmd = [str(maturin) if maturin.exists() else "maturin", "build", "--release", "--quiet"]
    subprocess.run(cmd + ["--out", str(out)], cwd=ROOT, check=True)
    wheels = sorted(out.glob("ferrinet-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"expected one wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def check_version(version, python, wheel, work):
    """(ok, sklearn status, seconds, log tail) for one interpreter."""
    start = time.perf_counter()
    venv = work / f"venv-{version}"
    r = run([python, "-m", "venv", str(venv)])
    if r.returncode:
        return False, "-", time.perf_counter() - start, r.stderr[-800:]
    py = str(venv / "bin" / "python")
    quiet = ["--quiet", "--disable-pip-version-check"]
    r = run([py, "-m", "pip", "install", *quiet, str(wheel)])
    if r.returncode:
        return False, "-", time.perf_counter() - start, r.stdout[-800:] + r.stderr[-800:]
    # scikit-learn is optional: where no build of it installs for this version, skip that part.
    r = run([py, "-m", "pip", "install", *quiet, "scikit-learn>=1.6"])
    sklearn = "yes" if r.returncode == 0 else "no (does not install)"
    r = run([py, str(ROOT / "tools" / "smoke_test.py")], cwd=work)
    ok = r.returncode == 0
    return ok, sklearn, time.perf_counter() - start, (r.stdout + r.stderr)[-1500:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=pathlib.Path, help="test this wheel instead of building")
    parser.add_argument("--versions", nargs="*", default=VERSIONS)
    parser.add_argument("--keep", type=pathlib.Path, help="make the venvs here and keep them")
    args = parser.parse_args(argv)

    pythons = find_pythons(args.versions)
    missing = [v for v in args.versions if v not in pythons]
    if not pythons:
        sys.exit(f"no CPython {', '.join(args.versions)} found (pyenv or python3.X on PATH)")

    with tempfile.TemporaryDirectory(prefix="ferrinet-pythons-") as tmp:
        work = args.keep or pathlib.Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        wheel = args.wheel or build_wheel(work / "wheel")
        print(f"wheel: {wheel.name}")
        if not WHEEL_TAG.match(wheel.name):
            sys.exit(
                f"the wheel is not tagged cp39-abi3 (one wheel for every CPython >= 3.9): {wheel.name}"
            )
        results = {}
        for version, python in pythons.items():
            ok, sklearn, seconds, log = check_version(version, python, wheel, work)
            results[version] = ok
            print(
                f"\n--- CPython {version} ({python}): {'ok' if ok else 'FAILED'} in {seconds:.0f} s"
            )
            print(log.rstrip())
            print(f"scikit-learn wrapper: {sklearn}")
    print("\nversion  result")
    for version in args.versions:
        status = ("ok" if results[version] else "FAILED") if version in results else "not found"
        print(f"{version:<8} {status}")
    if missing:
        print(f"(not on this machine: {', '.join(missing)})")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
