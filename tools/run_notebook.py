"""Run docs/tutorial.ipynb from top to bottom (nbclient + ipykernel) and, with ``--write``, store
it with its fresh outputs (so that it reads on GitHub and in the docs site without running).

tests/test_notebook.py calls ``execute`` and fails on any error. Outputs are made small on
purpose: figures at a low dpi, execution counts renumbered, no run-dependent metadata (so a
rerun changes the file only where a number changed).

Usage: ``python tools/run_notebook.py [--write] [PATH]``
"""

from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"


def execute(path=NOTEBOOK, timeout=300):
    """The notebook at ``path``, executed in a fresh python3 kernel in the repository root;
    raises nbclient's CellExecutionError on the first cell that fails."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT)}},
        allow_errors=False,
    )
    client.execute()
    # What makes reruns differ without a change of content: timings and the kernel's details.
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=pathlib.Path, default=NOTEBOOK)
    parser.add_argument("--write", action="store_true", help="store the outputs in the file")
    args = parser.parse_args(argv)
    nb = execute(args.path)
    if args.write:
        import nbformat

        nbformat.write(nb, str(args.path))
        print(f"wrote {args.path} ({args.path.stat().st_size:,} bytes)")
    else:
        print(f"{args.path}: ran without error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
