"""`make docs`: the MkDocs site builds with --strict (a broken link, a missing page or a
reference mkdocstrings cannot resolve fails it), has the pages it promises, and loads nothing
from the network."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytest.importorskip("mkdocs")
pytest.importorskip("material")
pytest.importorskip("mkdocstrings_handlers.python")
pytest.importorskip("mkdocs_jupyter")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def test_every_page_is_built(site):
    for page in ("index", "tutorial/index", "api/index", "maths/index", "article-errata/index"):
        assert (site / f"{page}.html").is_file() or (
            site / page.replace("/index", "") / "index.html"
        ).is_file(), page
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "What was wrong with the article" in home  # the README
    assert 'href="article-errata/' in home  # its docs/ links, made relative to the site


def test_the_api_reference_is_generated_from_docstrings_and_the_stub(site):
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for anchor in (
        "ferrinet.NeuralNetwork",
        "ferrinet.checks.gradcheck",
        "ferrinet.checks.check_parity",
        "ferrinet.training.History",
        "ferrinet.reference.article_backward",
        # from _core.pyi: the compiled module's class, methods and constants
        "ferrinet._core.NeuralNetwork.backward",
        "ferrinet._core.KERNELS",
    ):
        assert f'id="{anchor}"' in api, anchor


def test_the_tutorial_page_shows_the_stored_outputs(site):
    page = (site / "tutorial" / "index.html").read_text(encoding="utf-8")
    assert "gradcheck FAILED" in page and "data:image/png;base64," in page and "<polyline" in page


def test_nothing_is_loaded_from_elsewhere(site):
    external = re.compile(r'<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)="(?:https?:)?//', re.I)
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not external.search(text), page
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text, page
