"""Pictures: training curves, decision boundaries and digit grids (needs matplotlib).

matplotlib is an optional extra (``pip install ferrinet[plot]``): ``import ferrinet`` never
imports it; ``import ferrinet.plot`` does, and raises ImportError with that hint without it.

- ``plot_history(history)``: the loss per epoch (training and validation) and the metrics
  (accuracy) of a ``ferrinet.History``, of an estimator with ``loss_curve_`` (scikit-learn's
  or ``ferrinet.sklearn``'s MLPs) or of a dict of per-epoch lists (``History.as_dict()``).
- ``plot_decision_boundary(net, X, y)``: the class a 2-D classifier predicts over the plane,
  with the points on top (misclassified points marked); any ferrinet network, any object with
  ``predict`` (a scikit-learn classifier, a pipeline) or a function ``X -> labels``.
- ``plot_digits(images, labels, predictions)``: a grid of small images (8x8 digits, 28x28
  MNIST, any square or (n, h, w) images) titled with the true and predicted classes,
  mistakes in red.

Every function returns the ``matplotlib.figure.Figure`` and, given ``path``, writes it as a PNG
atomically: into a temporary file in the same directory, then renamed over ``path``, so that
no reader ever sees half a picture.

Backends: with ``ax=None`` the figure is a standalone ``Figure`` drawn by the non-interactive
Agg canvas. It is not registered with ``pyplot``, so it needs no display, opens no window,
leaves the backend you chose (or did not choose) alone, and is freed like any object once
dropped. In Jupyter a returned figure displays itself; in a script, to see it in a window,
draw into axes of your own::

    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ferrinet.plot.plot_history(history, ax=ax)
    plt.show()

Class colours are fixed: class ``k`` (the k-th of the sorted classes, or of the model's
``classes_``; for a ferrinet network, output ``k``) is ``class_colors(n)[k]`` (matplotlib's
``tab10``, or ``tab20`` beyond 10 classes); the region where it is predicted is
``region_colors(n)[k]``, the same colour at 35% over white.
"""

from __future__ import annotations

import io
import math
import numbers
import os
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np

try:
    import matplotlib
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure, SubFigure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle
except ImportError as _error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "ferrinet.plot needs matplotlib, an optional extra; install it with "
        "`pip install ferrinet[plot]` (or `pip install matplotlib`)"
    ) from _error

from . import _core
from .io import write_atomic
from .training import History

__all__ = [
    "class_colors",
    "plot_decision_boundary",
    "plot_digits",
    "plot_history",
    "region_colors",
]

PathLike = Union[str, "os.PathLike[str]"]
RGB = Tuple[float, float, float]

#: How much of a class colour shows in the region where that class is predicted (over white).
REGION_ALPHA = 0.35
_MAX_CLASSES = 20


# --------------------------------------------------------------------------------------------
# Shared helpers: checks, figures, saving
# --------------------------------------------------------------------------------------------
def _describe(value: object) -> str:
    """A short description of a value for error messages."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _check_int(name: str, value: object, low: int, high: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    number = int(value)
    if number < low or (high is not None and number > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bounds}, got {number}")
    return number


def _check_dpi(dpi: object) -> Optional[float]:
    if dpi is None:
        return None
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real):
        raise TypeError(f"dpi must be a number or None, got {_describe(dpi)}")
    value = float(dpi)
    if not (math.isfinite(value) and 10.0 <= value <= 1000.0):
        raise ValueError(f"dpi must be in [10, 1000], got {dpi!r}")
    return value


def _check_ax(ax: object) -> Optional[Axes]:
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(
            f"ax must be a matplotlib Axes (e.g. from plt.subplots()) or None, got {_describe(ax)}"
        )
    return ax


def _check_path(path: object) -> Optional[Path]:
    """None, or the path of a PNG file to write (its directory must exist)."""
    if path is None:
        return None
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or an os.PathLike, got {_describe(path)}")
    target = Path(os.fspath(path))
    if target.is_dir():
        raise ValueError(f"path {str(target)!r} is a directory; give a file name ending in .png")
    if target.suffix.lower() != ".png":
        raise ValueError(
            f"path must name a .png file (ferrinet.plot writes PNG images), got {str(target)!r}; "
            "for another format call fig.savefig() on the returned figure"
        )
    return target


def _new_figure(
    figsize: Tuple[float, float],
    dpi: Optional[float],
    layout: Optional[Literal["constrained"]] = "constrained",
) -> Figure:
    """A standalone figure (not known to pyplot) with an Agg canvas."""
    fig = Figure(figsize=figsize, dpi=100.0 if dpi is None else dpi, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _root_figure(ax: Axes) -> Figure:
    """The top-level figure an Axes belongs to (through any SubFigure)."""
    fig: Any = ax.figure
    while isinstance(fig, SubFigure):
        fig = fig.figure
    if not isinstance(fig, Figure):
        raise ValueError("ax does not belong to a figure")
    return fig


def _save(fig: Figure, target: Optional[Path], dpi: Optional[float]) -> None:
    """Write ``fig`` as a PNG to ``target`` atomically (a temporary file, then a rename)."""
    if target is None:
        return
    directory = target.parent
    if not directory.is_dir():
        raise FileNotFoundError(
            f"cannot write {str(target)!r}: the directory {str(directory)!r} does not exist"
        )
    # Rendered in memory (a PNG is small), then written as every ferrinet file is.
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi="figure" if dpi is None else dpi)
    write_atomic(target, buffer.getvalue())


def class_colors(n_classes: int) -> List[RGB]:
    """The colours of classes ``0 .. n_classes - 1`` (points and legend): matplotlib's
    ``tab10`` for up to 10 classes, ``tab20`` for up to 20."""
    n = _check_int("n_classes", n_classes, 1, _MAX_CLASSES)
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    colors: List[RGB] = []
    for k in range(n):
        r, g, b, _ = cmap(k)
        colors.append((float(r), float(g), float(b)))
    return colors


def region_colors(n_classes: int) -> List[RGB]:
    """The colours of the regions where each class is predicted: ``class_colors`` at
    ``REGION_ALPHA`` (35%) over white, opaque."""
    white = 1.0 - REGION_ALPHA
    return [
        (REGION_ALPHA * r + white, REGION_ALPHA * g + white, REGION_ALPHA * b + white)
        for r, g, b in class_colors(n_classes)
    ]


def _label_text(value: object) -> str:
    """A label as text: 3.0 -> "3", numpy scalars as Python ones."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _as_labels(values: object, what: str, n: Optional[int] = None) -> np.ndarray:
    """Class labels as a 1-D array: rows of scores (n, k > 1) -> argmax; one score per sample
    (n, 1) or (n,) of floats in [0, 1] that are not all 0/1 -> ``p >= 0.5``; integral floats
    -> int64; anything else (ints, strings, bools) as given."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as error:  # ragged lists
        raise ValueError(f"{what} must be one label per sample, got {_describe(values)}") from error
    if array.ndim == 2:
        if array.shape[1] == 1:
            array = array[:, 0]
        elif array.dtype.kind in "iuf":
            array = array.argmax(axis=1)
        else:
            raise ValueError(
                f"{what}: expected labels (n,) or scores (n, n_classes), got shape {array.shape} "
                f"of dtype {array.dtype}"
            )
    if array.ndim != 1:
        raise ValueError(
            f"{what}: expected labels of shape (n,) or scores (n, n_classes), got shape "
            f"{array.shape}"
        )
    if n is not None and array.shape[0] != n:
        raise ValueError(f"{what}: expected {n} labels (one per sample), got {array.shape[0]}")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{what} must be finite, got {array[~np.isfinite(array)][0]!r}")
        if np.all(array == np.round(array)):
            array = array.astype(np.int64)
        elif np.all((array >= 0.0) & (array <= 1.0)):
            array = (array >= 0.5).astype(np.int64)  # probabilities of class 1
        else:
            bad = array[array != np.round(array)][0]
            raise ValueError(
                f"{what} must be class labels (or scores), got the non-integer value {bad!r}"
            )
    elif array.dtype.kind == "b":
        array = array.astype(np.int64)
    elif array.dtype.kind == "O":
        raise TypeError(f"{what} must be labels of one type (numbers or strings), got objects")
    return array


# --------------------------------------------------------------------------------------------
# plot_history
# --------------------------------------------------------------------------------------------
_LOSS_NAMES = ("loss", "val_loss")
_PRETTY = {
    "loss": "training loss",
    "val_loss": "validation loss",
    "accuracy": "training accuracy",
    "val_accuracy": "validation accuracy",
    "validation_score": "validation score",
}


def _curve(name: str, values: object) -> np.ndarray:
    if isinstance(values, (str, bytes)):
        raise TypeError(f"history[{name!r}] must be a list of numbers, got {_describe(values)}")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"history[{name!r}] must be a list of numbers (one per epoch), got {_describe(values)}"
        ) from error
    if array.ndim != 1:
        raise ValueError(
            f"history[{name!r}] must be one number per epoch (1-D), got shape {array.shape}"
        )
    return array


def _read_history(
    history: object,
) -> Tuple[Dict[str, np.ndarray], np.ndarray, Optional[int], str]:
    """-> (curves by name, epoch numbers from 1, best epoch's position or None, subtitle)."""
    best: Optional[int] = None
    note = ""
    epochs: Optional[Sequence[int]] = None
    raw: Dict[str, object] = {}
    if isinstance(history, History):
        raw["loss"] = history.loss
        if history.val_loss:
            raw["val_loss"] = history.val_loss
        raw.update(history.metrics)
        epochs = list(history.epoch)
        if history.stopped_reason == "early_stopping" or history.val_loss:
            best = history.best_epoch
        if history.stopped_reason is not None:
            note = f"stopped: {history.stopped_reason.replace('_', ' ')}"
    elif isinstance(history, Mapping):
        if "loss" not in history:
            raise ValueError(
                "a history dict needs a 'loss' list (as History.as_dict() gives), got keys "
                f"{sorted(map(str, history))}"
            )
        raw = {str(k): v for k, v in history.items() if k not in ("lr", "epoch")}
    elif hasattr(history, "loss_curve_") or hasattr(history, "fit"):
        curve = getattr(history, "loss_curve_", None)
        if curve is None:
            raise ValueError(
                f"{type(history).__name__} has no loss_curve_: it is not fitted yet, or it was "
                "fitted with a solver that records no curve (scikit-learn's 'lbfgs')"
            )
        raw["loss"] = curve
        val = getattr(history, "validation_loss_curve_", None)
        if val is not None and len(val):
            raw["val_loss"] = val
        scores = getattr(history, "validation_scores_", None)
        if scores is not None and len(scores):
            raw["validation_score"] = scores
            if "val_loss" not in raw and np.any(np.isfinite(np.asarray(scores, dtype=float))):
                # scikit-learn's early stopping keeps the epoch of the best validation score
                best = int(np.nanargmax(np.asarray(scores, dtype=np.float64)))
    else:
        raise TypeError(
            "plot_history expects a ferrinet.History (from net.fit), a fitted estimator with "
            "loss_curve_ (ferrinet.sklearn or scikit-learn MLP), or a dict of per-epoch lists; "
            f"got {_describe(history)}"
        )

    curves = {name: _curve(name, values) for name, values in raw.items()}
    n = curves["loss"].shape[0]
    if n == 0:
        raise ValueError("nothing to plot: the history has no epochs")
    for name, values in curves.items():
        if values.shape[0] != n:
            raise ValueError(
                f"history[{name!r}] has {values.shape[0]} values but 'loss' has {n}; every "
                "curve needs one value per epoch"
            )
    if epochs is not None and len(epochs) == n:
        x = np.asarray(epochs, dtype=np.float64) + 1.0
    else:
        x = np.arange(1, n + 1, dtype=np.float64)
    return curves, x, best, note


def _draw_curves(
    ax: Axes,
    x: np.ndarray,
    curves: Dict[str, np.ndarray],
    names: Sequence[str],
    colors: Mapping[str, str],
    linestyle: str = "-",
) -> List[Any]:
    marker = "o" if len(x) <= 30 else None
    lines = []
    for name in names:
        (line,) = ax.plot(
            x,
            curves[name],
            linestyle=linestyle,
            marker=marker,
            markersize=3,
            color=colors[name],
            label=_PRETTY.get(name, name),
        )
        lines.append(line)
    return lines


def plot_history(
    history: Any,
    ax: Optional[Axes] = None,
    path: Optional[PathLike] = None,
    *,
    title: Optional[str] = None,
    dpi: Optional[float] = None,
) -> Figure:
    """Training curves: the loss per epoch (training, and validation when there is one) and
    the metrics (``accuracy``, ``val_accuracy``, ...) when there are any.

    Parameters
    ----------
    history
        A ``ferrinet.History`` (from ``net.fit``; the best epoch is marked when there is
        validation data or early stopping), a fitted estimator with ``loss_curve_`` (and
        ``validation_loss_curve_`` / ``validation_scores_`` when it has them), or a dict
        ``{"loss": [...], "val_loss": [...], "accuracy": [...], ...}`` (``lr`` is ignored).
    ax
        None: a new figure, the losses on the left and the metrics on the right. An Axes: the
        losses are drawn on it and the metrics, dashed, on a twin y axis.
    path
        Where to write the figure as a PNG (atomically); the directory must exist.
    title, dpi
        A title for the figure (default: describes the run); the resolution of the PNG
        (default: the figure's, 100 for the figures made here).

    Returns the Figure. The loss axis is logarithmic when the positive losses span more than
    two decades. Raises TypeError for something that is not a history, ValueError for an
    empty history or curves of different lengths.
    """
    axes = _check_ax(ax)
    target = _check_path(path)
    dpi = _check_dpi(dpi)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None, got {_describe(title)}")
    curves, x, best, note = _read_history(history)
    losses = [name for name in curves if name in _LOSS_NAMES]
    metrics = [name for name in curves if name not in _LOSS_NAMES]
    colors = {name: f"C{i}" for i, name in enumerate(curves)}

    if axes is None:
        fig = _new_figure((10.0 if metrics else 6.4, 4.0), dpi)
        loss_ax = fig.add_subplot(1, 2 if metrics else 1, 1)
        metric_ax: Optional[Axes] = fig.add_subplot(1, 2, 2) if metrics else None
        metric_style = "-"
    else:
        fig = _root_figure(axes)
        loss_ax = axes
        metric_ax = axes.twinx() if metrics else None
        metric_style = "--"

    handles = _draw_curves(loss_ax, x, curves, losses, colors)
    finite = np.concatenate([curves[name] for name in losses])
    finite = finite[np.isfinite(finite)]
    if finite.size and finite.min() > 0.0 and finite.max() / finite.min() > 100.0:
        loss_ax.set_yscale("log")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    if best is not None and 0 <= best < len(x):
        handles.append(
            loss_ax.axvline(
                x[best],
                color="0.4",
                linestyle=":",
                linewidth=1.2,
                label=f"best epoch ({int(x[best])})",
            )
        )
    if metric_ax is not None:
        metric_handles = _draw_curves(metric_ax, x, curves, metrics, colors, metric_style)
        if all("accuracy" in m for m in metrics):
            metric_ax.set_ylabel("accuracy")
        else:
            metric_ax.set_ylabel("score" if metrics == ["validation_score"] else "metric")
        if axes is None:
            metric_ax.set_xlabel("epoch")
            metric_ax.grid(True, alpha=0.3)
            metric_ax.legend(loc="best", fontsize="small")
        else:
            handles += metric_handles
    loss_ax.grid(True, alpha=0.3)
    loss_ax.legend(handles=handles, loc="best", fontsize="small")
    if title is None:
        title = f"Training history: {len(x)} epoch{'s' if len(x) != 1 else ''}"
        if note:
            title += f" ({note})"
    if axes is None:
        fig.suptitle(title)
    else:
        loss_ax.set_title(title)
    _save(fig, target, dpi)
    return fig


# --------------------------------------------------------------------------------------------
# plot_decision_boundary
# --------------------------------------------------------------------------------------------
def _is_ferrinet_network(net: object) -> bool:
    from . import reference

    return isinstance(net, (_core.NeuralNetwork, reference.NeuralNetwork))


def _classifier(net: Any) -> Tuple[Callable[[np.ndarray], np.ndarray], Optional[np.ndarray]]:
    """(a function points (n, 2) -> labels (n,), the classes in colour order or None)."""
    if _is_ferrinet_network(net):
        sizes = list(net.sizes)
        if sizes[0] != 2:
            raise ValueError(
                f"plot_decision_boundary needs a network with 2 inputs, got one with "
                f"{sizes[0]} (sizes {sizes})"
            )
        m, loss = sizes[-1], net.loss
        if loss == "binary_cross_entropy" and m > 1:
            raise ValueError(
                f"a binary_cross_entropy network with {m} outputs is multi-label: a point "
                "has no single class to colour it by"
            )

        def predict_network(points: np.ndarray) -> np.ndarray:
            out = np.asarray(net.predict(points), dtype=np.float64).reshape(len(points), m)
            if m == 1:  # sigmoid probability (bce) or a regression output (mse): 0/1 at 0.5
                return (out[:, 0] >= 0.5).astype(np.int64)
            return out.argmax(axis=1)

        return predict_network, np.arange(max(m, 2))

    classes = getattr(net, "classes_", None)
    if classes is not None:
        classes = np.asarray(classes)
        if classes.ndim != 1:
            classes = None  # multi-output estimators: fall back to the labels seen
    n_features = getattr(net, "n_features_in_", None)
    if isinstance(n_features, numbers.Integral) and n_features != 2:
        raise ValueError(
            f"plot_decision_boundary needs a model of 2 features, got {type(net).__name__} "
            f"fitted on {n_features}"
        )
    predict = getattr(net, "predict", None)
    if predict is None or not callable(predict):
        if callable(net):
            predict = net
        else:
            raise TypeError(
                "net must be a ferrinet network, an object with a predict method (e.g. a "
                "fitted scikit-learn classifier) or a function X -> labels; got "
                f"{_describe(net)}"
            )

    def predict_labels(points: np.ndarray) -> np.ndarray:
        return _as_labels(predict(points), "the model's predictions", len(points))

    return predict_labels, classes


def _class_index(labels: np.ndarray, classes: np.ndarray, what: str) -> np.ndarray:
    """The position of each label in ``classes`` (ValueError for a label not there)."""
    try:
        order = np.argsort(classes, kind="stable")
        ranked = classes[order]
        positions = np.searchsorted(ranked, labels)
    except TypeError as error:
        raise TypeError(
            f"{what} ({labels.dtype}) cannot be compared with the classes {classes.tolist()!r}"
        ) from error
    positions = np.clip(positions, 0, len(classes) - 1)
    found = ranked[positions] == labels
    if not np.all(found):
        bad = labels[~found][0]
        raise ValueError(
            f"{what} has the label {_label_text(bad)!r}, which is not one of the model's "
            f"classes {[_label_text(c) for c in classes]}"
        )
    return order[positions]


def plot_decision_boundary(
    net: Any,
    X: Any,
    y: Any = None,
    ax: Optional[Axes] = None,
    path: Optional[PathLike] = None,
    resolution: int = 300,
    *,
    padding: float = 0.1,
    title: Optional[str] = None,
    dpi: Optional[float] = None,
) -> Figure:
    """The class a 2-D classifier predicts at every point of the plane around ``X``, with the
    points of ``X`` on top, coloured by their true class ``y``; misclassified points get a
    black cross.

    Parameters
    ----------
    net
        A ferrinet network with 2 inputs (``ferrinet.NeuralNetwork`` or the reference): with
        several outputs the class is the argmax, with one output (binary_cross_entropy's
        sigmoid, or mse) it is ``output >= 0.5``. Or any object with ``predict(X) -> labels``
        (a fitted scikit-learn classifier or pipeline, ``ferrinet.sklearn.MLPClassifier``;
        ``classes_`` fixes the colour order), or a function ``X -> labels``. Predictions may
        also be scores (n, k) (argmax) or probabilities (n,) (``>= 0.5``).
    X
        The points, shape (n, 2), real and finite; they set the plotted area (their range,
        widened by ``padding`` of it on each side).
    y
        Their classes (n,) (or one-hot / probability rows (n, k)), or None to draw the points
        in grey without scoring them.
    ax, path
        An Axes to draw into (default: a new figure); a .png file to write (atomically).
    resolution
        The number of grid points along each axis (2 to 2000): the model is evaluated on
        ``resolution ** 2`` points, each drawn as one cell.
    padding, title, dpi
        The margin around the points (a fraction of their range, >= 0); a title (default: the
        accuracy on the points); the PNG's resolution (default: the figure's).

    Returns the Figure. Raises TypeError for a model that cannot predict or input that is not
    numbers, ValueError for points that are not 2-D, labels of the wrong length or unknown to
    the model, or more than 20 classes.
    """
    # ---- check everything before drawing
    axes = _check_ax(ax)
    target = _check_path(path)
    dpi = _check_dpi(dpi)
    resolution = _check_int("resolution", resolution, 2, 2000)
    if isinstance(padding, bool) or not isinstance(padding, numbers.Real):
        raise TypeError(f"padding must be a number, got {_describe(padding)}")
    if not (math.isfinite(float(padding)) and float(padding) >= 0.0):
        raise ValueError(f"padding must be finite and >= 0, got {padding!r}")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None, got {_describe(title)}")
    points = _as_points(X)
    predict, classes = _classifier(net)
    labels = None if y is None else _as_labels(y, "y", points.shape[0])

    # ---- the model on the grid and on the points
    gx, gy, grid = _grid(points, padding, resolution)
    grid_labels = predict(grid)
    point_predictions = predict(points)
    classes = _plotted_classes(classes, grid_labels, point_predictions, labels)
    n_colors = max(len(classes), 1)
    cell_class = _class_index(grid_labels, classes, "the model's predictions")
    region = np.asarray(region_colors(n_colors))[cell_class].reshape(resolution, resolution, 3)

    # ---- draw
    if axes is None:
        fig = _new_figure((6.4, 5.2), dpi)
        axes = fig.add_subplot(1, 1, 1)
    else:
        fig = _root_figure(axes)
    dx = (gx[1] - gx[0]) / 2.0
    dy = (gy[1] - gy[0]) / 2.0
    extent = (gx[0] - dx, gx[-1] + dx, gy[0] - dy, gy[-1] + dy)
    axes.imshow(region, origin="lower", extent=extent, interpolation="nearest", aspect="auto")
    legend: List[Any] = [
        Patch(
            facecolor=region_colors(n_colors)[k],
            edgecolor=class_colors(n_colors)[k],
            label=f"class {_label_text(c)}",
        )
        for k, c in enumerate(classes)
    ]
    accuracy_text = _draw_points(axes, points, labels, point_predictions, classes, legend)
    axes.set_xlim(extent[0], extent[1])
    axes.set_ylim(extent[2], extent[3])
    axes.set_xlabel("x[0]")
    axes.set_ylabel("x[1]")
    axes.legend(handles=legend, loc="best", fontsize="small", framealpha=0.8)
    axes.set_title(title if title is not None else f"Decision boundary{accuracy_text}")
    _save(fig, target, dpi)
    return fig


def _as_points(X: Any) -> np.ndarray:
    """plot_decision_boundary's points: finite floats of shape (n, 2), n >= 1."""
    try:
        points = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"X must be real numbers of shape (n, 2), got {_describe(X)}") from error
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
        raise ValueError(
            "plot_decision_boundary draws 2-D problems: X must have shape (n, 2) with n >= 1, "
            f"got shape {points.shape}"
        )
    if not np.all(np.isfinite(points)):
        raise ValueError("X must be finite (it has NaN or infinite values)")
    return points


def _grid(points: np.ndarray, padding: float, resolution: int):
    """The grid: ``resolution`` cell centres per axis spanning the padded range of the points
    -> (centres along x, along y, the grid's points (resolution**2, 2), row by row)."""
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    low, high = low - padding * span, high + padding * span
    gx = np.linspace(low[0], high[0], resolution)
    gy = np.linspace(low[1], high[1], resolution)
    grid = np.column_stack([np.tile(gx, resolution), np.repeat(gy, resolution)])
    return gx, gy, grid


def _plotted_classes(classes, grid_labels, point_predictions, labels):
    """The classes to colour: the model's own (``classes_``), else every label seen; at most
    ``_MAX_CLASSES``."""
    if classes is None:
        seen = [grid_labels, point_predictions] + ([] if labels is None else [labels])
        try:
            classes = np.unique(np.concatenate(seen))
        except TypeError as error:
            raise TypeError(
                "y and the model's predictions are labels of different types "
                f"({', '.join(str(s.dtype) for s in seen)}); they cannot be compared"
            ) from error
    if len(classes) > _MAX_CLASSES:
        raise ValueError(
            f"plot_decision_boundary colours at most {_MAX_CLASSES} classes, got {len(classes)}"
        )
    return classes


def _draw_points(axes, points, labels, point_predictions, classes, legend) -> str:
    """The points over the regions, coloured by their true class (grey without labels), the
    misclassified ones crossed (added to ``legend``). Returns the accuracy text of the title."""
    n_colors = max(len(classes), 1)
    palette = class_colors(n_colors)
    size = 24.0 if len(points) <= 500 else 10.0
    if labels is None:
        axes.scatter(
            points[:, 0], points[:, 1], s=size, c="0.3", edgecolors="white", linewidths=0.5
        )
        return ""
    true_class = _class_index(labels, classes, "y")
    axes.scatter(
        points[:, 0],
        points[:, 1],
        s=size,
        c=np.asarray(palette)[true_class],
        edgecolors="black",
        linewidths=0.5,
    )
    wrong = np.asarray(point_predictions != labels, dtype=bool)
    if np.any(wrong):
        axes.scatter(
            points[wrong, 0],
            points[wrong, 1],
            s=size * 1.6,
            marker="x",
            c="black",
            linewidths=1.2,
        )
        legend.append(
            Line2D(
                [],
                [],
                color="black",
                marker="x",
                linestyle="",
                label=f"misclassified ({int(wrong.sum())})",
            )
        )
    return f": {1.0 - wrong.mean():.1%} of {len(points)} points right"


# --------------------------------------------------------------------------------------------
# plot_digits
# --------------------------------------------------------------------------------------------
def _as_images(images: Any) -> np.ndarray:
    """(n, h, w) float images from (n, h, w) or flat square rows (n, side * side)."""
    try:
        array = np.asarray(images)
    except (TypeError, ValueError) as error:
        raise TypeError(f"images must be an array of numbers, got {_describe(images)}") from error
    if array.dtype.kind not in "biuf":
        raise TypeError(f"images must be real numbers, got {_describe(array)}")
    if array.ndim == 2:
        side = math.isqrt(array.shape[1])
        if side * side != array.shape[1] or side == 0:
            raise ValueError(
                f"images of shape {array.shape} are read as {array.shape[0]} flat rows of "
                f"{array.shape[1]} pixels, which is not a square (64 = 8x8, 784 = 28x28); pass "
                "them as (n, height, width)"
            )
        array = array.reshape(array.shape[0], side, side)
    elif array.ndim != 3:
        raise ValueError(
            "images must be a batch: (n, height, width) or flat square rows (n, pixels); got "
            f"shape {array.shape}" + (" (one image? pass images[None])" if array.ndim == 1 else "")
        )
    if array.shape[0] == 0:
        raise ValueError("images is empty: nothing to plot")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError("images must be finite (they have NaN or infinite pixels)")
    return array


def _caption_and_frame(canvas, x0, y0, side, true, pred, k, mistake) -> None:
    """Image ``k``'s caption (true and predicted class) above it and its frame (red when the
    prediction is wrong), in the inch units of the digits canvas."""
    parts = []
    if true is not None:
        parts.append(f"true {_label_text(true[k])}")
    if pred is not None:
        parts.append(f"pred {_label_text(pred[k])}")
    if parts:
        canvas.text(
            x0 + side / 2.0,
            y0 - 0.03,
            "\n".join(parts),
            ha="center",
            va="bottom",
            fontsize=8,
            color="red" if mistake else "black",
            fontweight="bold" if mistake else "normal",
        )
    canvas.add_patch(
        Rectangle(
            (x0, y0),
            side,
            side,
            fill=False,
            edgecolor="red" if mistake else "0.8",
            linewidth=2.5 if mistake else 0.5,
        )
    )


def _digits_title(n: int, total: int, wrong: Optional[np.ndarray]) -> str:
    """plot_digits' default title: how many images are shown, and how many are wrong."""
    title = f"{n} images" if n == total else f"the first {n} of {total} images"
    if wrong is not None:
        n_wrong = int(wrong[:n].sum())
        title += f": {n_wrong} wrong prediction{'s' if n_wrong != 1 else ''}"
        if n_wrong:
            title += " (in red)"
    return title


def plot_digits(
    images: Any,
    labels: Any = None,
    predictions: Any = None,
    ncols: int = 10,
    path: Optional[PathLike] = None,
    *,
    max_images: int = 100,
    cmap: str = "gray_r",
    title: Optional[str] = None,
    dpi: Optional[float] = None,
) -> Figure:
    """A grid of small images (handwritten digits), each titled with its true class and the
    predicted one; a wrong prediction gets a red title and a red frame.

    Parameters
    ----------
    images
        (n, height, width), or flat rows (n, side * side): (n, 64) for the 8x8 UCI digits,
        (n, 784) for 28x28 MNIST. Every image is drawn on the same grey scale (the range of
        all the images shown), ink dark with the default ``cmap="gray_r"``.
    labels, predictions
        Optional, one per image: class labels, or rows of scores / probabilities (n, k) whose
        argmax is the class (so ``predictions=net.predict(X)`` works as is).
    ncols
        Images per row (at most the number of images).
    path
        A .png file to write (atomically); its directory must exist.
    max_images
        Only the first ``max_images`` (default 100) are drawn, and the title says so; pass a
        selection (``X[wrong]``) to see others.
    title, dpi
        The figure's title (default: how many predictions are wrong); the PNG's resolution.

    Returns the Figure. Raises TypeError for images that are not numbers, ValueError for a
    shape that is not a batch of images or labels of the wrong length.
    """
    target = _check_path(path)
    dpi = _check_dpi(dpi)
    ncols = _check_int("ncols", ncols, 1)
    max_images = _check_int("max_images", max_images, 1)
    if not isinstance(cmap, str):
        raise TypeError(f"cmap must be a colormap name, got {_describe(cmap)}")
    if cmap not in matplotlib.colormaps:
        raise ValueError(f"unknown colormap {cmap!r}; e.g. 'gray_r', 'gray', 'viridis'")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None, got {_describe(title)}")
    pictures = _as_images(images)
    total = pictures.shape[0]
    true = None if labels is None else _as_labels(labels, "labels", total)
    pred = None if predictions is None else _as_labels(predictions, "predictions", total)
    wrong = None
    if true is not None and pred is not None:
        try:
            wrong = np.asarray(true != pred, dtype=bool).reshape(total)
        except (TypeError, ValueError) as error:  # pragma: no cover - numpy returns False
            raise TypeError("labels and predictions cannot be compared") from error

    n = min(total, max_images)
    cols = min(ncols, n)
    rows = -(-n // cols)
    # Each image in a cell of its own, placed by hand (a layout engine is slow on 100 axes):
    # `side` inches of picture under `lines` lines of title, a band for the figure's title.
    lines = (true is not None) + (pred is not None)
    side, gap, line_h, head = 0.85, 0.15, 0.16, 0.45
    cell_w, cell_h = side + gap, side + gap + line_h * lines
    width, height = max(cols * cell_w + gap, 3.0), rows * cell_h + head
    fig = _new_figure((width, height), dpi, layout=None)
    shown = pictures[:n]
    vmin, vmax = float(shown.min()), float(shown.max())
    if vmax <= vmin:
        vmax = vmin + 1.0
    # one Axes over the whole figure whose data units are inches from the top-left corner
    canvas = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    canvas.set_axis_off()
    canvas.set_xlim(0.0, width)
    canvas.set_ylim(height, 0.0)
    left0 = (width - cols * cell_w + gap) / 2.0
    for k in range(n):
        r, c = divmod(k, cols)
        x0 = left0 + c * cell_w
        y0 = head + r * cell_h + line_h * lines + gap / 2.0  # top of the picture
        canvas.imshow(
            shown[k],
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            interpolation="nearest",
            extent=(x0, x0 + side, y0 + side, y0),
            aspect="auto",
        )
        mistake = wrong is not None and bool(wrong[k])
        _caption_and_frame(canvas, x0, y0, side, true, pred, k, mistake)
    if title is None:
        title = _digits_title(n, total, wrong)
    fig.suptitle(title, fontsize=10, y=1.0 - 0.12 / height, va="top")
    _save(fig, target, dpi)
    return fig
