"""HTML for Jupyter's rich display (``_repr_html_``): the network's summary table, a History as
a table with a small loss curve, and a Trace's layers as tables.

Plain HTML and an inline SVG, with no style sheet, script or external file, so that the
notebook, the docs site and GitHub's notebook viewer all show the same thing, and nothing here
needs matplotlib. Every value is escaped.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any, List, Optional, Sequence

# Long histories show their first and last rows only; the curve shows every epoch.
HEAD_ROWS = 5
TAIL_ROWS = 5

_TABLE = '<table style="border-collapse:collapse;font-family:monospace;font-size:12px">'
_CELL = "padding:1px 8px;border-bottom:1px solid #ddd"


def _cells(values: Sequence[str], tag: str = "td", right: Sequence[bool] = ()) -> str:
    out = []
    for i, v in enumerate(values):
        align = "right" if (i < len(right) and right[i]) else "left"
        out.append(f'<{tag} style="{_CELL};text-align:{align}">{escape(v)}</{tag}>')
    return "<tr>" + "".join(out) + "</tr>"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] = ()) -> str:
    """An HTML table; ``right[i]`` right-aligns column i (numbers)."""
    body = "".join(_cells(r, "td", right) for r in rows)
    return f"{_TABLE}<thead>{_cells(header, 'th', right)}</thead><tbody>{body}</tbody></table>"


def _num(x: float, digits: int = 6) -> str:
    return f"{float(x):.{digits}g}"


# ------------------------------------------------------------------------------------ network
def network_html(net: Any) -> str:
    """``net.summary()`` as HTML: the one-line repr, the layer table and the totals."""
    from .inspect import _summary_parts

    title, header, rows, right, footer = _summary_parts(net)
    notes = "<br>".join(escape(line) for line in footer)
    return (
        f"<div><code>{escape(title)}</code>{table(header, rows, right)}"
        f'<div style="font-size:12px;margin-top:4px">{notes}</div></div>'
    )


# ------------------------------------------------------------------------------------ history
def loss_curve_svg(
    series: Sequence[Sequence[float]],
    labels: Sequence[str],
    best: Optional[int] = None,
    width: int = 320,
    height: int = 120,
) -> str:
    """A small line chart as inline SVG: one polyline per series (x = epoch), a log y axis
    when every value is positive and they span more than a factor of 10, a dot on ``best``
    of the first series. Non-finite values are left out of the lines."""
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    finite = [v for s in series for v in s if math.isfinite(v)]
    n = max((len(s) for s in series), default=0)
    if not finite or n == 0:
        return ""
    log = min(finite) > 0 and max(finite) / min(finite) > 10
    f = (lambda v: math.log10(v)) if log else (lambda v: v)
    lo, hi = f(min(finite)), f(max(finite))
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    pad_l, pad_r, pad_t, pad_b = 44, 8, 8, 18
    w, h = width - pad_l - pad_r, height - pad_t - pad_b

    def xy(i: int, v: float) -> str:
        x = pad_l + (w * i / (n - 1) if n > 1 else w / 2)
        y = pad_t + h * (hi - f(v)) / (hi - lo)
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="loss per epoch">',
        f'<rect x="{pad_l}" y="{pad_t}" width="{w}" height="{h}" fill="none" stroke="#ccc"/>',
    ]
    top, bottom = (10**hi, 10**lo) if log else (hi, lo)
    for text, y in ((_num(top, 3), pad_t + 8), (_num(bottom, 3), pad_t + h)):
        parts.append(
            f'<text x="{pad_l - 3}" y="{y}" font-size="9" text-anchor="end">{escape(text)}</text>'
        )
    parts.append(
        f'<text x="{pad_l + w / 2:.1f}" y="{height - 4}" font-size="9" text-anchor="middle">'
        f"epoch (1-{n}){' - log scale' if log else ''}</text>"
    )
    for k, (s, label) in enumerate(zip(series, labels)):
        colour = colours[k % len(colours)]
        points = " ".join(xy(i, v) for i, v in enumerate(s) if math.isfinite(v))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}">'
            f"<title>{escape(label)}</title></polyline>"
        )
        parts.append(
            f'<text x="{pad_l + w - 2}" y="{pad_t + 10 + 10 * k}" font-size="9" '
            f'text-anchor="end" fill="{colour}">{escape(label)}</text>'
        )
    if best is not None and series and 0 <= best < len(series[0]):
        v = series[0][best]
        if math.isfinite(v):
            cx, cy = xy(best, v).split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="#d62728"><title>best</title>')
            parts.append("</circle>")
    parts.append("</svg>")
    return "".join(parts)


def history_html(history: Any) -> str:
    """A History as HTML: one line of what happened, the loss curve (SVG) and a table of the
    epochs (the first and last few when there are many)."""
    names = ["loss"] + (["val_loss"] if history.val_loss else []) + list(history.metrics)
    columns = [history._values(name) for name in names]
    header = ["epoch"] + names + ["lr"]
    n = history.epochs_completed
    shown: List[Optional[int]] = list(range(n))
    if n > HEAD_ROWS + TAIL_ROWS + 1:
        shown = list(range(HEAD_ROWS)) + [None] + list(range(n - TAIL_ROWS, n))
    best = history.best_epoch
    rows = []
    for i in shown:
        if i is None:
            rows.append(["..."] + [""] * (len(header) - 1))
            continue
        mark = " *" if i == best else ""
        cells = [f"{history.epoch[i] + 1}{mark}" if i < len(history.epoch) else str(i + 1)]
        cells += [_num(col[i], 4) if i < len(col) else "" for col in columns]
        cells.append(_num(history.lr[i], 3) if i < len(history.lr) else "")
        rows.append(cells)
    summary = f"History: {n} epoch{'s' if n != 1 else ''}, stopped: {history.stopped_reason}"
    if best is not None:
        summary += f"; best epoch (*) {best + 1} by {history.monitor}"
    curves = [history.loss] + ([history.val_loss] if history.val_loss else [])
    svg = loss_curve_svg(curves, ["loss", "val_loss"][: len(curves)], best)
    right = [True] * len(header)
    return (
        f'<div><div style="font-size:12px">{escape(summary)}</div>{svg}'
        f"{table(header, rows, right) if n else ''}</div>"
    )


# -------------------------------------------------------------------------------------- trace
def trace_html(trace: Any) -> str:
    """A Trace as HTML: the loss, input, output and target, then one table per layer with a row
    per neuron (w, b, z, a, delta, dL/db, dL/dw), as ``print(trace)`` shows them."""
    vec = lambda v: "[" + ", ".join(_num(x) for x in v) + "]"  # noqa: E731
    out = [
        '<div style="font-size:12px">',
        f"<div>trace of one sample: loss {escape(trace.loss_name)} = {_num(trace.loss)}</div>",
        f"<div>input <code>{escape(vec(trace.input))}</code></div>",
        f"<div>output <code>{escape(vec(trace.output))}</code> target "
        f"<code>{escape(vec(trace.target))}</code></div>",
    ]
    header = ["neuron", "w", "b", "z = w.x + b", "a = f(z)", "delta = dL/dz", "dL/db", "dL/dw"]
    right = [True, False, True, True, True, True, True, False]
    for lt in trace.layers:
        out.append(
            f"<div style='margin-top:6px'><b>layer {lt.index}</b> ({escape(lt.activation)}): "
            f"{lt.n_inputs} -> {lt.n_outputs}, input x = <code>{escape(vec(lt.input))}</code></div>"
        )
        rows = [
            [
                str(nt.index),
                vec(nt.weights),
                _num(nt.bias),
                _num(nt.z),
                _num(nt.a),
                _num(nt.delta),
                _num(nt.grad_bias),
                vec(nt.grad_weights),
            ]
            for nt in lt.neurons
        ]
        out.append(table(header, rows, right))
        out.append(
            f"<div>dL/dx = W<sup>T</sup> delta = <code>{escape(vec(lt.grad_input))}</code></div>"
        )
    out.append("</div>")
    return "".join(out)
