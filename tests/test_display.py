"""Rich display in Jupyter (``_repr_html_`` of NeuralNetwork, History and Trace) and the choice
of progress bar for ``fit(verbose=1)``: tqdm's notebook widget inside a Jupyter kernel, its text
bar elsewhere, ferrinet's own line without tqdm (the detection is monkeypatched to test each)."""

import re
import sys
import types

import ferrinet
import numpy as np
import pytest
from ferrinet import _html, datasets, training


def _fitted(epochs=30, **options):
    X, y = datasets.moons(120, seed=0)
    net = ferrinet.NeuralNetwork([2, 8, 2], loss="cross_entropy", seed=0)
    return net, net.fit(X, y, epochs=epochs, batch_size=16, verbose=0, **options)


# ------------------------------------------------------------------------------ NeuralNetwork
def test_network_html_is_the_summary_table():
    net = ferrinet.NeuralNetwork([64, 32, 10], activation="tanh", loss="cross_entropy", seed=3)
    html = net._repr_html_()
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    assert len(rows) == 1 + 2  # the header and one row per layer
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r) for r in rows]
    assert cells[0] == [
        "layer",
        "type",
        "activation",
        "input -&gt; output",
        "weights",
        "biases",
        "params",
    ]
    assert cells[1] == ["0", "Dense", "tanh", "(n, 64) -&gt; (n, 32)", "32x64", "32", "2,080"]
    assert cells[2] == ["1", "Dense", "softmax", "(n, 32) -&gt; (n, 10)", "10x32", "10", "330"]
    # the same totals as the text summary, and the repr (escaped) as the title
    for line in net.summary().splitlines()[-4:]:
        assert line.replace(">", "&gt;") in html
    assert "NeuralNetwork([64, 32, 10]" in html and "&#x27;tanh&#x27;" in html


# ------------------------------------------------------------------------------------ History
def test_history_html_has_a_table_and_an_svg_curve_of_every_epoch():
    _, history = _fitted(epochs=30, validation_split=0.2)
    html = history._repr_html_()
    lines = re.findall(r'<polyline[^>]*points="([^"]*)"', html)
    assert len(lines) == 2  # loss and val_loss
    assert all(len(points.split()) == 30 for points in lines)
    # the table: header, the first 5 epochs, "...", the last 5
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    assert len(rows) == 1 + 5 + 1 + 5
    header = re.findall(r"<th[^>]*>(.*?)</th>", rows[0])
    assert header == ["epoch", "loss", "val_loss", "accuracy", "val_accuracy", "lr"]
    first = re.findall(r"<td[^>]*>(.*?)</td>", rows[1])
    assert first[0].startswith("1") and float(first[1]) == pytest.approx(history.loss[0], rel=1e-3)
    last = re.findall(r"<td[^>]*>(.*?)</td>", rows[-1])
    assert last[0].startswith("30") and float(last[1]) == pytest.approx(history.loss[-1], rel=1e-3)
    assert "30 epochs" in html and "completed" in html
    assert html.count("<circle") == 1  # the best epoch


def test_history_html_short_and_empty():
    _, history = _fitted(epochs=3)
    html = history._repr_html_()
    assert len(re.findall(r"<tr>", html)) == 1 + 3  # every epoch, nothing elided
    assert "..." not in html
    empty = ferrinet.History()._repr_html_()
    assert "0 epochs" in empty and "<svg" not in empty and "<table" not in empty


def test_loss_curve_svg_skips_non_finite_values_and_uses_a_log_scale_when_it_helps():
    svg = _html.loss_curve_svg([[10.0, 1.0, float("nan"), 0.01]], ["loss"])
    (points,) = re.findall(r'points="([^"]*)"', svg)
    assert len(points.split()) == 3 and "log scale" in svg
    assert "log scale" not in _html.loss_curve_svg([[2.0, 1.5, 1.0]], ["loss"])
    assert _html.loss_curve_svg([[float("nan")]], ["loss"]) == ""


# -------------------------------------------------------------------------------------- Trace
def test_trace_html_has_one_table_per_layer_and_a_row_per_neuron():
    net = ferrinet.NeuralNetwork([2, 3, 1], seed=0)
    t = net.trace(np.array([0.5, -1.0]), np.array([1.0]))
    html = t._repr_html_()
    tables = re.findall(r"<table.*?</table>", html)
    assert len(tables) == 2
    assert [len(re.findall(r"<tr>", tb)) for tb in tables] == [1 + 3, 1 + 1]
    delta = t.layers[0].neurons[2].delta
    assert f"{delta:.6g}" in tables[0]
    assert f"{t.loss:.6g}" in html


# ----------------------------------------------------------------------------- progress bars
def test_in_notebook_detects_a_jupyter_kernel_only(monkeypatch):
    def fake_ipython(shell_class_name):
        shell = type(shell_class_name, (), {})() if shell_class_name else None
        return types.SimpleNamespace(get_ipython=lambda: shell)

    monkeypatch.setitem(sys.modules, "IPython", fake_ipython("ZMQInteractiveShell"))
    assert training._in_notebook()
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython("TerminalInteractiveShell"))
    assert not training._in_notebook()
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython(None))  # IPython imported, no shell
    assert not training._in_notebook()
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not training._in_notebook()


def test_fit_verbose_uses_the_notebook_bar_in_a_notebook(monkeypatch, capsys):
    pytest.importorskip("ipywidgets")
    notebook = pytest.importorskip("tqdm.notebook")

    monkeypatch.setattr(training, "_in_notebook", lambda: True)
    assert training._tqdm_class() is notebook.tqdm
    made = []
    original = notebook.tqdm.__init__

    def spy(self, *args, **kwargs):
        made.append(type(self))
        original(self, *args, **kwargs)

    monkeypatch.setattr(notebook.tqdm, "__init__", spy)
    _fitted(epochs=2)  # verbose=0: no bar
    assert made == []
    X, y = datasets.moons(60, seed=0)
    ferrinet.NeuralNetwork([2, 4, 2], loss="cross_entropy", seed=0).fit(X, y, epochs=2, verbose=1)
    assert made == [notebook.tqdm]


def test_fit_verbose_uses_the_text_bar_outside_a_notebook(monkeypatch, capsys):
    tqdm = pytest.importorskip("tqdm")
    monkeypatch.setattr(training, "_in_notebook", lambda: False)
    assert training._tqdm_class() is tqdm.tqdm
    X, y = datasets.moons(60, seed=0)
    ferrinet.NeuralNetwork([2, 4, 2], loss="cross_entropy", seed=0).fit(X, y, epochs=3, verbose=1)
    err = capsys.readouterr().err
    assert "3/3" in err and "epoch" in err  # tqdm's own format: "3/3 [..., ...epoch/s, loss=...]"


def test_notebook_without_ipywidgets_falls_back_to_the_text_bar(monkeypatch):
    tqdm = pytest.importorskip("tqdm")
    monkeypatch.setattr(training, "_in_notebook", lambda: True)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import raises ImportError
    assert training._tqdm_class() is tqdm.tqdm


def test_without_tqdm_verbose_1_draws_its_own_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    for in_notebook in (True, False):
        monkeypatch.setattr(training, "_in_notebook", lambda v=in_notebook: v)
        assert training._tqdm_class() is None
    X, y = datasets.moons(60, seed=0)
    ferrinet.NeuralNetwork([2, 4, 2], loss="cross_entropy", seed=0).fit(X, y, epochs=2, verbose=1)
    assert "Epoch 2/2 [====================]" in capsys.readouterr().err
