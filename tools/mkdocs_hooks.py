"""MkDocs hook (mkdocs.yml): the README is the site's home page.

The README lives at the repository root, outside docs/, and links to the pages as
``docs/name.md`` so that they work on GitHub; the site serves it as ``index.md`` beside those
pages, so the ``docs/`` prefix comes off its relative links.
"""

from __future__ import annotations

import pathlib
import re

from mkdocs.structure.files import File

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_as_index() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.sub(r"\]\(docs/", "](", text)


def on_files(files, config):
    files.append(File.generated(config, "index.md", content=readme_as_index()))
    return files
