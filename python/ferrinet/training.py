"""``fit`` and ``evaluate``: the training loop around ``train_epoch`` (a mixin, ``FitMixin``).

The maths of an epoch (shuffle, batches, dropout, L2, clipping, the optimizer step) lives in
``train_epoch``: in Rust for ``ferrinet.NeuralNetwork``, in readable Python for
``ferrinet.reference.NeuralNetwork``. This module only orchestrates epochs, and it relies on
nothing but what both networks have::

    train_epoch(X, Y, batch_size, optimizer, shuffle=, seed=, l2=, dropout=, clip_norm=,
                sample_weight=)          compute_loss(X, Y, sample_weight=)     predict(X)
    get_weights() / set_weights(w)       sample_weights(Y, sample_weight, class_weight)
    training_state (None, or an object with .optimizer .seed .epoch)
    learning_rate / set_learning_rate(lr) / reset_training()      loss, sizes, n_parameters

so that ``fit(epochs=N)`` is exactly N calls of ``train_epoch`` (bit for bit), plus, between
epochs, a learning-rate schedule (``set_learning_rate``), validation, early stopping, callbacks
and progress output. Everything here is pure Python (numpy is used only when the data already
are numpy arrays), so the pure-Python reference can use the mixin too.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, fields
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _validate
from . import schedules as _schedules
from ._validate import MAX_COUNT
from ._validate import flag as _flag
from ._validate import integer as _int
from ._validate import plain as _plain
from ._validate import real as _real
from ._validate import seed as _seed
from .optim import make_optimizer

try:  # the extension's exception class, when the extension is there
    from ._core import DivergenceError
except ImportError:  # pure-Python use (the reference alone)

    class DivergenceError(FloatingPointError):  # type: ignore[no-redef]
        """Training diverged: a loss or a weight became NaN or infinite."""


__all__ = [
    "DivergenceError",
    "EarlyStopping",
    "FitMixin",
    "History",
    "STOPPED_REASONS",
    "accuracy",
    "check_epoch_options",
]

#: A callback of ``fit``: ``cb(epoch, logs)``; True stops training after that epoch.
Callback = Callable[[int, Dict[str, float]], Any]

#: Why ``fit`` ended: every epoch ran, early stopping, a callback returned True, divergence.
STOPPED_REASONS = ("completed", "early_stopping", "callback", "nonfinite")

_CLASSIFIER_LOSSES = ("cross_entropy", "binary_cross_entropy")


class _DefaultInt(int):
    """An int default that ``fit`` can tell apart from the same value given explicitly
    (``seed=0`` given means "this seed"; left out on a warm start, "the run's seed")."""

    __slots__ = ()


_DEFAULT_SEED = _DefaultInt(0)


# --------------------------------------------------------------------------------------------
# Checks of options (ferrinet._validate): TypeError for the wrong kind of value, ValueError for
# a value out of range; both say what was expected and what was given.
# --------------------------------------------------------------------------------------------
def check_epoch_options(
    n_hidden: int,
    batch_size: Any,
    shuffle: Any,
    l2: Any,
    dropout: Any,
    clip_norm: Any,
) -> Tuple[int, bool, float, List[float], Optional[float]]:
    """The options of ``train_epoch`` checked and normalised:
    -> (batch_size int, shuffle bool, l2 float, rates [p per hidden layer], clip_norm or None).

    ``dropout``: None (no dropout), one p for every hidden layer, or a list with one p per hidden
    layer, each in [0, 1). ``clip_norm``: None or a real > 0."""
    batch_size = _int(batch_size, "batch_size", 1, MAX_COUNT)
    shuffle = _flag(shuffle, "shuffle")
    l2 = _validate.l2_penalty(l2)
    if dropout is None:
        rates = [0.0] * n_hidden
    else:
        if hasattr(dropout, "tolist"):
            dropout = dropout.tolist()
        if isinstance(dropout, (list, tuple)):
            if len(dropout) != n_hidden:
                raise ValueError(
                    f"dropout: expected one rate per hidden layer ({n_hidden}), got "
                    f"{len(dropout)} rates {list(dropout)!r}"
                )
            rates = [
                _real(p, f"dropout[{i}]", 0.0, 1.0, high_open=True) for i, p in enumerate(dropout)
            ]
        else:
            p = _real(dropout, "dropout", 0.0, 1.0, high_open=True)
            rates = [p] * n_hidden
    if clip_norm is not None:
        clip_norm = _real(clip_norm, "clip_norm", low=0.0, low_open=True)
    return batch_size, shuffle, l2, rates, clip_norm


def _batch_length(X, what="X"):
    """The number of samples of a batch (n, n_inputs); ValueError for anything else."""
    shape = getattr(X, "shape", None)
    if shape is not None:
        if len(shape) != 2:
            raise ValueError(
                f"{what} must be a batch of shape (n, n_inputs), got shape {tuple(shape)}"
            )
        n = int(shape[0])
    else:
        # a dict has a length and items, but X[0] is a key lookup (KeyError: 0)
        if isinstance(X, (str, bytes, Mapping, AbstractSet)) or not (
            hasattr(X, "__len__") and hasattr(X, "__getitem__")
        ):
            raise TypeError(
                f"{what} must be a batch of shape (n, n_inputs) (an array or a list of rows), "
                f"got {type(X).__name__}"
            )
        n = len(X)
        if n and (isinstance(X[0], (str, bytes)) or not hasattr(X[0], "__len__")):
            raise ValueError(
                f"{what} must be a batch of shape (n, n_inputs) (a list of rows), got a "
                f"list of {type(X[0]).__name__}"
            )
    if n == 0:
        raise ValueError(f"{what} has no samples")
    return n


def _length(value, what="Y"):
    """The number of rows of ``value``, None for a scalar or an object without a length;
    TypeError for a mapping, a set or text (``len`` works, indexing by row does not)."""
    if isinstance(value, (str, bytes, Mapping, AbstractSet)):
        raise TypeError(
            f"{what} must be an array or a list (one entry per sample), got {type(value).__name__}"
        )
    shape = getattr(value, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else None
    try:
        return len(value)
    except TypeError:
        return None


def _sum(values):
    s = 0.0
    for v in values:
        s += v
    return s


# --------------------------------------------------------------------------------------------
# Accuracy
# --------------------------------------------------------------------------------------------
def accuracy(loss: str, predictions: Any, Y: Any, sample_weight: Any = None) -> Optional[float]:
    """The fraction of correct predictions (weighted by ``sample_weight`` when given), or None
    when the loss has no classes (mse).

    cross_entropy: the argmax of each row of ``predictions`` against the class index (1-D Y) or
    the argmax of the target row (2-D Y; the first largest). binary_cross_entropy: each output
    ``p >= 0.5`` against ``t >= 0.5``, a sample's score being the mean over its outputs (with one
    output: right or wrong).
    """
    if loss not in _CLASSIFIER_LOSSES:
        return None
    # numpy arrays when the input has them, else lists (the pure-Python path below)
    P: Any
    w: Any
    if any(hasattr(v, "shape") for v in (predictions, Y, sample_weight)):
        import numpy as np

        P = np.asarray(predictions, dtype=np.float64)
        if P.ndim == 1:
            P = P[:, None]
        T = np.asarray(Y)
        if loss == "cross_entropy":
            pred = P.argmax(axis=1)
            true = T.argmax(axis=1) if T.ndim == 2 else T.astype(np.int64)
            correct = (pred == true).astype(np.float64)
        else:
            T = T.astype(np.float64).reshape(P.shape)
            correct = ((P >= 0.5) == (T >= 0.5)).mean(axis=1)
        if sample_weight is None:
            return float(correct.mean())
        w = np.asarray(sample_weight, dtype=np.float64)
        return float((w * correct).sum() / w.sum())

    P = [list(row) if isinstance(row, (list, tuple)) else [row] for row in predictions]
    Y = list(Y)
    if loss == "cross_entropy":
        correct = []
        for p, t in zip(P, Y):
            pred = max(range(len(p)), key=p.__getitem__)
            true = (
                max(range(len(t)), key=list(t).__getitem__)
                if isinstance(t, (list, tuple))
                else int(t)
            )
            correct.append(1.0 if pred == true else 0.0)
    else:
        correct = []
        for p, t in zip(P, Y):
            t = list(t) if isinstance(t, (list, tuple)) else [t]
            hits = _sum(1.0 if (p_i >= 0.5) == (t_i >= 0.5) else 0.0 for p_i, t_i in zip(p, t))
            correct.append(hits / len(p))
    if sample_weight is None:
        return _sum(correct) / len(correct)
    w = [float(v) for v in sample_weight]
    return _sum(w_k * c_k for w_k, c_k in zip(w, correct)) / _sum(w)


# --------------------------------------------------------------------------------------------
# History and EarlyStopping
# --------------------------------------------------------------------------------------------
class History:
    """What ``fit`` did, one entry per completed epoch of this call.

    ``loss`` (the training objective of each epoch: the mean of the batches' losses before their
    updates, dropout and L2 included, a running value as scikit-learn's ``loss_curve_`` and
    Keras report it), ``val_loss`` (the validation loss after the epoch: plain mean, no dropout,
    no L2; empty without validation data), ``metrics`` (name -> list: for classifiers
    ``accuracy``, a running value too: counted from each batch's outputs before its update,
    dropout active, weighted by the sample weights given (class weights left out), with no
    second pass over the training data; and ``val_accuracy``, exact, from the same pass over
    the validation data as ``val_loss``; ``evaluate`` gives exact values), ``lr`` (the
    learning rate the epoch ran with), ``epoch`` (the index of each epoch in the training run,
    which a warm start continues), ``epochs_completed``, ``stopped_reason`` (one of
    ``"completed"``, ``"early_stopping"``, ``"callback"``, ``"nonfinite"``), ``monitor`` (the
    quantity early stopping watched, else ``val_loss`` with validation data, else ``loss``),
    ``best_epoch`` (position in these lists of the best epoch: early stopping's best, where an
    improvement must beat ``min_delta``, else that of the best ``monitor`` value; None before
    any epoch) and ``restored_best_weights`` (early stopping set the best epoch's weights back).
    """

    def __init__(self, monitor: str = "loss", mode: str = "min") -> None:
        self.loss: List[float] = []
        self.val_loss: List[float] = []
        self.metrics: Dict[str, List[float]] = {}
        self.lr: List[float] = []
        self.epoch: List[int] = []
        self.stopped_reason: Optional[str] = None
        self.monitor = monitor
        self._mode = mode
        self.restored_best_weights = False
        self._best: Optional[int] = None

    @property
    def epochs_completed(self) -> int:
        return len(self.loss)

    def _values(self, name):
        if name == "loss":
            return self.loss
        if name == "val_loss":
            return self.val_loss
        return self.metrics.get(name, [])

    @property
    def best_epoch(self) -> Optional[int]:
        if self._best is not None:  # early stopping's own best (min_delta counts)
            return self._best
        values = self._values(self.monitor)
        best = None
        for i, v in enumerate(values):
            if v != v:  # NaN is never best
                continue
            if best is None or (v < values[best] if self._mode == "min" else v > values[best]):
                best = i
        return best

    def as_dict(self) -> Dict[str, List[float]]:
        """Every per-epoch list by name (Keras's ``history.history``)."""
        out = {"loss": list(self.loss)}
        if self.val_loss:
            out["val_loss"] = list(self.val_loss)
        out.update({k: list(v) for k, v in self.metrics.items()})
        out["lr"] = list(self.lr)
        return out

    def __len__(self):
        return self.epochs_completed

    def _append(self, epoch, lr, logs):
        self.epoch.append(epoch)
        self.lr.append(lr)
        self.loss.append(logs["loss"])
        if "val_loss" in logs:
            self.val_loss.append(logs["val_loss"])
        for name, value in logs.items():
            if name not in ("loss", "val_loss", "lr"):
                self.metrics.setdefault(name, []).append(value)

    def __repr__(self):
        parts = [
            f"epochs_completed={self.epochs_completed}",
            f"stopped_reason={self.stopped_reason!r}",
        ]
        if self.epochs_completed:
            parts.append(f"loss={self.loss[-1]:.6g}")
            if self.val_loss:
                parts.append(f"val_loss={self.val_loss[-1]:.6g}")
            for name, values in self.metrics.items():
                parts.append(f"{name}={values[-1]:.4f}")
            best = self.best_epoch
            if best is not None:
                parts.append(
                    f"best_epoch={best} ({self.monitor}={self._values(self.monitor)[best]:.6g})"
                )
        return f"History({', '.join(parts)})"

    def _repr_html_(self):
        """Jupyter's rich display: a table of the epochs and a small inline SVG loss curve."""
        from ._html import history_html

        return history_html(self)


@dataclass(frozen=True)
class EarlyStopping:
    """Stop ``fit`` when ``monitor`` has not improved for ``patience`` epochs in a row.

    ``monitor``: ``"loss"``, ``"val_loss"``, ``"accuracy"`` or ``"val_accuracy"`` (the last two
    for classifiers); None picks ``val_loss`` when there is validation data, else ``loss``.
    Losses must go down, accuracies up. An epoch improves when its value beats the best so far
    by more than ``min_delta`` (``x < best - min_delta``, or ``x > best + min_delta`` for
    accuracies; NaN never improves; the first epoch always does unless NaN). Training stops at
    the end of the ``max(patience, 1)``-th epoch in a row without improvement (Keras's rule).
    ``restore_best_weights``: when it stops, set the weights of the best epoch back (the
    optimizer's state, the generator and the schedule stay where training stopped).

    ``fit(early_stopping=True)`` uses these defaults; a dict gives some of them.
    """

    monitor: Optional[str] = None
    patience: int = 10
    min_delta: float = 0.0
    restore_best_weights: bool = True

    def __post_init__(self):
        if self.monitor is not None and not isinstance(self.monitor, str):
            raise TypeError(
                f"EarlyStopping: monitor must be a name such as 'val_loss', got {self.monitor!r}"
            )
        object.__setattr__(self, "patience", _int(self.patience, "EarlyStopping: patience", 0))
        object.__setattr__(
            self, "min_delta", _real(self.min_delta, "EarlyStopping: min_delta", low=0.0)
        )
        object.__setattr__(
            self,
            "restore_best_weights",
            _flag(self.restore_best_weights, "EarlyStopping: restore_best_weights"),
        )

    @classmethod
    def make(cls, value: Any) -> Optional[EarlyStopping]:
        """None / False (off), True (defaults), a dict of options, an ``EarlyStopping``, or any
        object with some of its attributes."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        valid = [f.name for f in fields(cls)]
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(valid))
            if unknown:
                raise TypeError(
                    f"early_stopping has no option {unknown[0]!r}; valid: {', '.join(valid)}"
                )
            return cls(**value)
        if any(hasattr(value, name) for name in valid):
            return cls(**{name: getattr(value, name) for name in valid if hasattr(value, name)})
        raise TypeError(
            f"early_stopping must be None, True, a dict or an EarlyStopping object, got {value!r}"
        )


class _Stopper:
    """EarlyStopping's running state."""

    def __init__(self, config, monitor):
        self.config = config
        self.monitor = monitor
        self.mode = _mode(monitor)
        self.best = None
        self.best_weights = None
        self.wait = 0

    def update(self, value, weights_now):
        """After an epoch: True when training should stop."""
        delta = self.config.min_delta
        if value == value and (
            self.best is None
            or (value < self.best - delta if self.mode == "min" else value > self.best + delta)
        ):
            self.best = value
            self.wait = 0
            if self.config.restore_best_weights:
                self.best_weights = weights_now()
            return False
        self.wait += 1
        return self.wait >= max(self.config.patience, 1)


def _mode(monitor):
    return "max" if monitor.endswith("accuracy") else "min"


# --------------------------------------------------------------------------------------------
# Progress output
# --------------------------------------------------------------------------------------------
def _in_notebook():
    """True inside a Jupyter kernel: IPython is running and its shell is the kernel's
    (ZMQInteractiveShell), not a terminal IPython, where a widget could not be shown."""
    ipython = sys.modules.get("IPython")  # never imported here: only if the user runs it
    get = getattr(ipython, "get_ipython", None)
    shell = get() if get is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _tqdm_class():
    """tqdm's class when tqdm is installed (it is optional), else None: in a notebook, its
    widget bar (tqdm.notebook, which needs ipywidgets), elsewhere the plain text bar."""
    try:
        from tqdm import tqdm  # type: ignore[import-untyped]
    except ImportError:
        return None
    # Without ipywidgets the widget bar cannot be drawn; the text bar still works in a notebook.
    if _in_notebook() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm as notebook_tqdm  # type: ignore[import-untyped]

        return notebook_tqdm
    return tqdm


def _format_logs(logs):
    parts = []
    for name, value in logs.items():
        if name == "lr":
            parts.append(f"lr {value:.3g}")
        elif name.endswith("accuracy"):
            parts.append(f"{name} {value:.4f}")
        else:
            parts.append(f"{name} {value:.4g}")
    return " - ".join(parts)


class _Progress:
    """verbose=0: nothing. verbose=1: a bar (tqdm when importable, else one line on stderr
    redrawn with a carriage return). verbose=2: one line per epoch on stdout."""

    def __init__(self, verbose, total):
        self.verbose = verbose
        self.total = total
        self.done = 0
        self.bar = None
        self.width = 0
        self.closed = False
        if verbose == 1:
            tqdm = _tqdm_class()
            if tqdm is not None:
                self.bar = tqdm(total=total, unit="epoch", file=sys.stderr, leave=True)

    def update(self, epoch, logs, seconds):
        self.done += 1
        if self.verbose == 2:
            print(
                f"Epoch {epoch + 1} ({self.done}/{self.total}) - {_format_logs(logs)} - "
                f"{seconds:.2f}s",
                file=sys.stdout,
                flush=True,
            )
        elif self.verbose == 1:
            shown = {k: v for k, v in logs.items() if k in ("loss", "val_loss")}
            if self.bar is not None:
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
                self.bar.update(1)
            else:
                filled = (20 * self.done) // self.total
                line = (
                    f"Epoch {self.done}/{self.total} [{'=' * filled}{'.' * (20 - filled)}] "
                    f"{_format_logs(shown)}"
                )
                pad = max(0, self.width - len(line))
                self.width = len(line)
                sys.stderr.write("\r" + line + " " * pad)
                sys.stderr.flush()

    def message(self, text):
        if self.verbose:
            self.close()
            print(text, file=sys.stderr if self.verbose == 1 else sys.stdout, flush=True)

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        elif self.verbose == 1 and self.done:
            sys.stderr.write("\n")
            sys.stderr.flush()


# --------------------------------------------------------------------------------------------
# The mixin
# --------------------------------------------------------------------------------------------
class _FitRecord:
    """What ``fit`` keeps between calls for a warm start: the training run it belongs to, the
    schedule, its running state and its epoch counter."""

    def __init__(self, run, schedule, state):
        self.run = run
        self.schedule = schedule
        self.state = state
        self.epoch = 0


class FitMixin:
    """``fit`` and ``evaluate`` for a network that has ``train_epoch`` (see the module doc)."""

    #: True when ``train_epoch`` itself raises DivergenceError and keeps the last finite weights
    #: (the Rust core); otherwise ``fit`` checks each epoch loss and restores the weights of
    #: the epoch before a non-finite one.
    _guards_divergence = False

    # ----- hooks
    def _start_run(self: Any, optimizer, seed):
        """Start a training run (optimizer state, generator; ``seed`` None: a random one)
        without training. Each network defines it: ``ferrinet.NeuralNetwork`` in the core, the
        reference with its ``TrainingState``."""
        raise NotImplementedError(f"{type(self).__name__} does not define _start_run")

    def _fit_check_data(self: Any, X, Y, sample_weight, finite):
        """Checks data before ``fit`` changes anything (ValueError / TypeError): shapes,
        targets, weights and, with ``finite``, the input values. Here by ``compute_loss``,
        which checks everything; the Rust network checks without computing."""
        self.compute_loss(X, Y, sample_weight=sample_weight)

    def _fit_train_epoch(self: Any, plan) -> Tuple[float, Optional[float]]:
        """One epoch of ``fit`` -> (epoch loss, running accuracy or None): ``train_epoch``, and
        for a classifier the accuracy of each batch's outputs as the epoch ran (weighted by
        the sample weights the user gave, class weights left out)."""
        raise NotImplementedError(f"{type(self).__name__} does not define _fit_train_epoch")

    def _fit_save_run(self: Any):
        """What ``_fit_restore_run`` needs to put the training run back as it is now."""
        return (self.training_state, self.__dict__.get("_fit_record"))

    def _fit_restore_run(self: Any, saved, restore: bool) -> None:
        """With ``restore``, the training run of ``saved`` back (``fit``'s first epoch refused
        the data); either way ``saved`` is no longer needed. (The reference's first epoch
        cannot refuse data that ``compute_loss`` accepted, so its run was not touched yet.)"""
        if restore:
            self.training_state = saved[0]
            self.__dict__["_fit_record"] = saved[1]

    def _fit_measure(self: Any, X, Y, sample_weight) -> Dict[str, Any]:
        """``evaluate``'s dict; the Rust network makes it in one pass."""
        result: Dict[str, Any] = {
            "loss": float(self.compute_loss(X, Y, sample_weight=sample_weight))
        }
        if self.loss in _CLASSIFIER_LOSSES:
            result["accuracy"] = accuracy(self.loss, self.predict(X), Y, sample_weight)
        return result

    # ----- evaluate
    def evaluate(self: Any, X: Any, Y: Any, sample_weight: Any = None) -> Dict[str, Any]:
        """``{"loss": ..., "accuracy": ...}`` on (X, Y): the mean loss (weighted by
        ``sample_weight`` when given; no dropout, no L2) and, for classifiers, the accuracy
        (``ferrinet.training.accuracy``: argmax for cross_entropy, p >= 0.5 for
        binary_cross_entropy). Exact values over all of (X, Y) with the current weights (unlike
        ``fit``'s running training metrics). The model is unchanged. The Rust network makes
        both in one blocked forward pass, which keeps no whole output and stops on Ctrl-C."""
        _batch_length(X, "X")
        return self._fit_measure(X, Y, sample_weight)

    # ----- fit
    def fit(
        self: Any,
        X: Any,
        Y: Any,
        epochs: int = 100,
        batch_size: int = 32,
        optimizer: Any = None,
        learning_rate: Optional[float] = None,
        shuffle: bool = True,
        seed: Optional[int] = _DEFAULT_SEED,
        validation_data: Optional[Sequence[Any]] = None,
        validation_split: float = 0.0,
        early_stopping: Any = None,
        callbacks: Union[Callback, Iterable[Callback], None] = (),
        verbose: int = 1,
        l2: float = 0.0,
        dropout: Union[float, Sequence[float], None] = None,
        clip_norm: Optional[float] = None,
        schedule: Any = None,
        sample_weight: Any = None,
        class_weight: Any = None,
        warm_start: bool = False,
        on_divergence: str = "raise",
        **optimizer_options: Any,
    ) -> History:
        """Train for ``epochs`` epochs of mini-batches; returns a ``History``.

        Each epoch is one ``train_epoch`` call with the same arguments, so ``fit(epochs=N)``
        equals N ``train_epoch`` calls bit for bit. Between epochs: the learning rate of the
        schedule, validation, early stopping, callbacks, progress output.

        optimizer, learning_rate, **optimizer_options
            A ``ferrinet.optim`` object, or a name ("sgd", "rmsprop", "adam", "adamw") built
            with ``lr=learning_rate`` (None: the optimizer's default) and the options (e.g.
            ``momentum=0.9``). None: "adam" for a new run; the run's own optimizer when a warm
            start continues one.
        seed
            Seeds the generator of the shuffles and dropout masks (None: random). Left out on a
            warm start: the run's seed; given, it must be the run's seed.
        validation_data, validation_split
            ``(X_val, Y_val)`` or ``(X_val, Y_val, sample_weight_val)``; or the LAST fraction
            ``validation_split`` in [0, 1) of (X, Y) (and of sample_weight), taken before any
            shuffling: the first ``int(n * (1 - validation_split))`` samples train. Not both.
        early_stopping
            None, True (``EarlyStopping()`` defaults), a dict of its options or an
            ``EarlyStopping``: stop when the monitored value has not improved for ``patience``
            epochs, restoring the best weights (by default).
        callbacks
            Callables ``cb(epoch, logs)`` called after every epoch, in order, with the epoch's
            index in the run and a dict ``logs`` (``loss``, ``val_loss``, ``accuracy``,
            ``val_accuracy`` when they exist, ``lr``). If one returns True, training stops after
            that epoch (every callback still runs for it).
        verbose
            0 silent; 1 a progress bar on stderr (tqdm when installed) with loss and val_loss;
            2 one line per epoch on stdout.
        l2, dropout, clip_norm, shuffle, batch_size, sample_weight, class_weight
            As ``train_epoch``. class_weight is turned into sample weights once, for the
            training samples; validation is weighted by its own sample weights only.
        schedule
            A ``ferrinet.schedules`` object or name ("constant", "step", "exponential",
            "cosine", "reduce_on_plateau"; ``ferrinet.schedules.for_fit``: "step",
            "exponential" and "cosine" span this call's ``epochs``, the others take their
            defaults). Its lr is set with
            ``set_learning_rate`` before each epoch; ReduceLROnPlateau watches ``val_loss`` when
            there is validation data, else ``loss``. None: no schedule (on a warm start: the
            running schedule continues). On a warm start, a schedule equal to the running one
            continues it; another one starts at its epoch 0 from the current learning rate.
        warm_start
            False: a new training run (``reset_training()`` first: fresh optimizer state,
            generator seeded with ``seed``, schedule from epoch 0). True: continue the current
            run (if any) where it stopped: optimizer moments, step count, generator, current
            learning rate and the schedule's position and state, so ``fit(3)`` then
            ``fit(3, warm_start=True)`` equals ``fit(6)`` bit for bit. Early stopping and the
            history start afresh.
        on_divergence
            "raise" (default): a non-finite loss or update raises DivergenceError (the weights
            are those of the last finite step; the exception's ``history`` attribute holds the
            epochs done). "stop": return the history with ``stopped_reason="nonfinite"``.

        Every option is checked, and the data's shapes, targets and weights, and the values
        of the validation inputs, before anything changes; the values of the training inputs
        are checked as the first epoch gathers them (no separate pass), and a bad one fails
        the call after putting the weights, the optimizer state, the generator and the
        schedule back. Bad options or data raise ValueError or TypeError with the model (weights
        and training state) unchanged. KeyboardInterrupt stops training between two batches and
        propagates; the network is consistent (weights and state of the last completed batch).
        """
        plan = _plan_fit(
            self,
            X,
            Y,
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            learning_rate=learning_rate,
            shuffle=shuffle,
            seed=seed,
            validation_data=validation_data,
            validation_split=validation_split,
            early_stopping=early_stopping,
            callbacks=callbacks,
            verbose=verbose,
            l2=l2,
            dropout=dropout,
            clip_norm=clip_norm,
            schedule=schedule,
            sample_weight=sample_weight,
            class_weight=class_weight,
            warm_start=warm_start,
            on_divergence=on_divergence,
            optimizer_options=optimizer_options,
        )
        # ---- everything checked but the values of the training inputs, which the first epoch
        # checks as it gathers them: the training run is kept until then, to put it back
        plan.saved_run = self._fit_save_run()
        try:
            record = _start_or_continue(self, plan)
            return _run_epochs(self, plan, record)
        finally:
            if plan.saved_run is not None:  # stopped before the first epoch ended
                self._fit_restore_run(plan.saved_run, False)
                plan.saved_run = None


# --------------------------------------------------------------------------------------------
# fit, phase by phase: plan (checks everything and changes nothing; may raise), start or
# continue the training run, one epoch at a time, finish
# --------------------------------------------------------------------------------------------
@dataclass
class _FitPlan:
    """Everything ``fit`` checked and decided before it changes anything."""

    epochs: int
    verbose: int
    on_divergence: str
    callbacks: list
    # train_epoch's options, checked and normalised (dropout: one rate per hidden layer)
    batch_size: int
    shuffle: bool
    l2: float
    dropout: list
    clip_norm: Any
    # the training run: continue the current one, or start one with this optimizer and seed
    continuing: bool
    optimizer: Any
    seed: Any
    # the data: the training part (sample_weight as given, and the weights train_epoch gets,
    # class_weight applied) and the validation triple (X_val, Y_val, w_val) or None
    X: Any
    Y: Any
    sample_weight: Any
    weights: Any
    val: Any
    classifier: bool
    stopping: Any  # an EarlyStopping or None
    monitor: str  # what early stopping (and History.best_epoch) watches
    record: Any  # the _FitRecord a warm start continues, or None for a new one
    schedule: Any
    schedule_state: Any
    # the training run before this fit (``_fit_save_run``) until the first epoch has passed
    saved_run: Any = None


def _plan_fit(net, X, Y, *, optimizer_options, **options):
    """Phase 1 of ``fit``: every option and the data checked, in the order of the signature;
    returns a ``_FitPlan``. Raises ValueError / TypeError; changes nothing."""
    o = options
    epochs, verbose, on_divergence, warm_start, callbacks = _check_run_options(
        o["epochs"], o["verbose"], o["on_divergence"], o["warm_start"], o["callbacks"]
    )
    n_hidden = len(net.sizes) - 2
    batch_size, shuffle, l2, rates, clip_norm = check_epoch_options(
        n_hidden, o["batch_size"], o["shuffle"], o["l2"], o["dropout"], o["clip_norm"]
    )
    run = net.training_state
    continuing = warm_start and run is not None
    current = run if continuing else None
    opt = _plan_optimizer(current, o["optimizer"], o["learning_rate"], optimizer_options)
    seed = _plan_seed(current, o["seed"])
    X_tr, Y_tr, w_tr, val = _plan_data(
        X, Y, o["sample_weight"], o["validation_split"], o["validation_data"]
    )
    weights = net.sample_weights(Y_tr, w_tr, o["class_weight"])
    if weights is not None and _sum(float(v) for v in weights) == 0.0:
        raise ValueError("the sample weights sum to 0; nothing to learn from")
    # the data themselves, checked by the network: shapes, targets and weights now; the values
    # of the training inputs as the first epoch gathers them (a bad one fails the call and puts
    # the model back), the validation inputs now (they are first used after an epoch)
    net._fit_check_data(X_tr, Y_tr, weights, finite=False)
    if val is not None:
        net._fit_check_data(val[0], val[1], val[2], finite=True)
    classifier = net.loss in _CLASSIFIER_LOSSES
    stopping, monitor = _plan_monitor(o["early_stopping"], val is not None, classifier)
    record, schedule, schedule_state = _plan_schedule(net, current, o["schedule"], opt, epochs)
    return _FitPlan(
        epochs=epochs,
        verbose=verbose,
        on_divergence=on_divergence,
        callbacks=callbacks,
        batch_size=batch_size,
        shuffle=shuffle,
        l2=l2,
        dropout=rates,
        clip_norm=clip_norm,
        continuing=continuing,
        optimizer=opt,
        seed=seed,
        X=X_tr,
        Y=Y_tr,
        sample_weight=w_tr,
        weights=weights,
        val=val,
        classifier=classifier,
        stopping=stopping,
        monitor=monitor,
        record=record,
        schedule=schedule,
        schedule_state=schedule_state,
    )


def _check_run_options(epochs, verbose, on_divergence, warm_start, callbacks):
    """fit's own options -> (epochs, verbose 0/1/2, on_divergence, warm_start, [callables])."""
    epochs = _int(epochs, "epochs", 1, MAX_COUNT)
    verbose = _plain(verbose)
    if verbose is True or verbose is False:
        verbose = int(verbose)
    if not _validate.is_integer(verbose):
        raise TypeError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    if on_divergence not in ("raise", "stop"):
        raise ValueError(f"on_divergence must be 'raise' or 'stop', got {on_divergence!r}")
    warm_start = _flag(warm_start, "warm_start")
    if callable(callbacks):
        callbacks = [callbacks]
    elif callbacks is None:
        callbacks = []
    else:
        try:
            callbacks = list(callbacks)
        except TypeError:
            raise TypeError(
                f"callbacks must be a list of callables cb(epoch, logs), got {callbacks!r}"
            ) from None
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"callbacks must be callables cb(epoch, logs), got {cb!r}")
    return epochs, verbose, on_divergence, warm_start, callbacks


def _plan_optimizer(run, optimizer, learning_rate, optimizer_options):
    """The optimizer of this fit. ``run``: the training run a warm start continues, or None."""
    run_optimizer = getattr(run, "optimizer", None) if run is not None else None
    if optimizer is None and learning_rate is None and not optimizer_options and run is not None:
        if run_optimizer is None:
            raise ValueError(
                "warm_start=True: the current training run's optimizer is unknown here; "
                "pass optimizer= (the one the run was started with)"
            )
        return run_optimizer
    opt = make_optimizer(
        "adam" if optimizer is None else optimizer, learning_rate, **optimizer_options
    )
    if run is not None and run_optimizer is not None and opt.to_dict() != run_optimizer.to_dict():
        raise ValueError(
            f"warm_start=True continues the training run started with {run_optimizer!r}, "
            f"got {opt!r}; leave optimizer out, or pass warm_start=False (or call "
            "reset_training()) to start a new run"
        )
    return opt


def _plan_seed(run, seed):
    """The seed of a new run (None: random); on a warm start (``run`` not None) the run's."""
    if seed is _DEFAULT_SEED:
        return run.seed if run is not None else 0
    seed = _seed(seed)
    if run is not None and seed is not None and seed != run.seed:
        raise ValueError(
            f"warm_start=True continues the training run started with seed={run.seed}, "
            f"got seed={seed}; leave seed out, or pass warm_start=False (or call "
            "reset_training()) to start a new run"
        )
    return seed


def _plan_data(X, Y, sample_weight, validation_split, validation_data):
    """(X, Y, sample_weight) checked for lengths and split -> (X_tr, Y_tr, w_tr, val), val
    None or (X_val, Y_val, w_val)."""
    n = _batch_length(X, "X")
    n_y = _length(Y)
    if n_y is not None and n_y != n:
        raise ValueError(f"Y: expected targets for {n} samples (the rows of X), got {n_y}")
    if sample_weight is not None:
        n_w = _length(sample_weight, "sample_weight")
        if n_w != n:
            raise ValueError(
                f"sample_weight: expected {n} weights (one per sample of X), got "
                f"{'a scalar' if n_w is None else n_w}"
            )
    split = _real(validation_split, "validation_split", 0.0, 1.0, high_open=True)
    if split > 0.0 and validation_data is not None:
        raise ValueError("give validation_data or validation_split, not both")
    if split > 0.0:
        n_tr = int(n * (1.0 - split))
        if n_tr < 1 or n_tr >= n:
            raise ValueError(
                f"validation_split={split} of {n} samples leaves {n_tr} to train on and "
                f"{n - n_tr} to validate; both need at least one"
            )
        if sample_weight is None:
            return X[:n_tr], Y[:n_tr], None, (X[n_tr:], Y[n_tr:], None)
        val = (X[n_tr:], Y[n_tr:], sample_weight[n_tr:])
        return X[:n_tr], Y[:n_tr], sample_weight[:n_tr], val
    if validation_data is None:
        return X, Y, sample_weight, None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise TypeError(
            "validation_data must be a pair (X_val, Y_val) or a triple (X_val, Y_val, "
            f"sample_weight_val), got {type(validation_data).__name__}"
            + (f" of length {len(validation_data)}" if hasattr(validation_data, "__len__") else "")
        )
    val = tuple(validation_data) + ((None,) if len(validation_data) == 2 else ())
    _batch_length(val[0], "validation_data X")
    return X, Y, sample_weight, val


def _plan_monitor(early_stopping, has_validation, classifier):
    """-> (EarlyStopping or None, the monitored quantity)."""
    available = ["loss"] + (["accuracy"] if classifier else [])
    if has_validation:
        available += ["val_loss"] + (["val_accuracy"] if classifier else [])
    stopping = EarlyStopping.make(early_stopping)
    monitor = "val_loss" if has_validation else "loss"
    if stopping is None or stopping.monitor is None:
        return stopping, monitor
    if stopping.monitor not in available:
        raise ValueError(
            f"early_stopping: cannot monitor {stopping.monitor!r}"
            + (
                ""
                if has_validation or not stopping.monitor.startswith("val_")
                else " without validation data"
            )
            + f"; available: {', '.join(available)}"
        )
    return stopping, stopping.monitor


def _plan_schedule(net, run, schedule, opt, epochs):
    """-> (the _FitRecord to continue or None, schedule, its running state). ``run``: the
    training run a warm start continues, or None. A schedule equal to the running one continues
    it; another one starts at its epoch 0."""
    record = getattr(net, "_fit_record", None)
    if run is None or record is None or record.run is not run:
        record = None
    if schedule is None:  # the running schedule continues (if any)
        if record is None:
            return None, None, None
        return record, record.schedule, record.state
    sched = _schedules.for_fit(schedule, epochs)  # a name spans this call's epochs
    if record is not None and record.schedule == sched:
        return record, sched, record.state
    lr0 = net.learning_rate if run is not None else opt.to_dict()["lr"]
    return None, sched, sched.start(lr0)


def _start_or_continue(net, plan):
    """Phase 2: a new training run (``reset_training()``, then the optimizer state and the
    generator) unless a warm start continues one; returns the ``_FitRecord`` of this fit."""
    if not plan.continuing:
        net.reset_training()
        net._start_run(plan.optimizer, plan.seed)
    record = plan.record
    if record is None:
        record = _FitRecord(net.training_state, plan.schedule, plan.schedule_state)
    net._fit_record = record
    return record


def _run_epochs(net, plan, record):
    """Phases 3 and 4: the epochs, then the history with the reason training stopped."""
    history = History(plan.monitor, _mode(plan.monitor))
    stopper = _Stopper(plan.stopping, plan.monitor) if plan.stopping is not None else None
    progress = _Progress(plan.verbose, plan.epochs)
    try:
        for _ in range(plan.epochs):
            if _fit_epoch(net, plan, record, history, stopper, progress):
                break
        else:
            history.stopped_reason = "completed"
    finally:
        progress.close()
    return history


def _fit_epoch(net, plan, record, history, stopper, progress):
    """One epoch of ``fit``: the schedule's lr, ``train_epoch``, the logs, early stopping,
    callbacks, the schedule's step. True when training stops after it (``history`` says why)."""
    epoch = net.training_state.epoch
    if record.state is not None and record.state.lr != net.learning_rate:
        net.set_learning_rate(record.state.lr)
    lr = net.learning_rate
    started = time.perf_counter()
    measured = _train_epoch_guarded(net, plan, history, progress, epoch, lr)
    if measured is None:  # diverged, on_divergence="stop"
        return True
    loss, train_accuracy = measured
    logs: Dict[str, Any] = {"loss": float(loss)}
    if plan.classifier:
        logs["accuracy"] = train_accuracy
    val = plan.val
    if val is not None:
        measures = net._fit_measure(val[0], val[1], val[2])  # one pass: loss and accuracy
        logs["val_loss"] = measures["loss"]
        if plan.classifier:
            logs["val_accuracy"] = measures["accuracy"]
    logs["lr"] = lr
    history._append(epoch, lr, logs)
    seconds = time.perf_counter() - started
    return _end_epoch(net, plan, record, history, stopper, progress, epoch, logs, seconds)


def _train_epoch_guarded(net, plan, history, progress, epoch, lr):
    """``train_epoch`` with fit's divergence rules: the epoch loss, or None when training
    diverged and ``on_divergence="stop"``; DivergenceError (with ``.history``) otherwise. The
    weights are those of the last finite step (the core keeps them; else the epoch's start)."""
    snapshot = None if net._guards_divergence else net.get_weights()
    try:
        try:
            loss, train_accuracy = net._fit_train_epoch(plan)
        except (ValueError, TypeError):
            # the first epoch checks the training inputs as it gathers them: a bad value fails
            # the call, and the core has put the weights back; the training run goes back too
            if history.epochs_completed == 0:
                net._fit_restore_run(plan.saved_run, True)
                plan.saved_run = None
            raise
        if plan.saved_run is not None:  # the data passed: nothing to put back any more
            net._fit_restore_run(plan.saved_run, False)
            plan.saved_run = None
        if not math.isfinite(loss):
            if snapshot is not None:
                net.set_weights(snapshot)
            raise DivergenceError(
                f"the epoch loss is {loss}; the weights are those before the epoch"
            )
    except FloatingPointError as err:
        history.stopped_reason = "nonfinite"
        if plan.on_divergence == "stop":
            progress.message(f"stopped: training diverged in epoch {epoch} (lr {lr:.3g})")
            return None
        error = DivergenceError(
            f"fit: {err} [epoch {epoch}, learning rate {lr:.6g}]. The network "
            "keeps the weights of its last finite step; try a smaller "
            "learning_rate or clip_norm=..., or pass on_divergence='stop' to get "
            "the history instead of this error."
        )
        error.history = history  # type: ignore[attr-defined]
        raise error from err
    return loss, train_accuracy


def _end_epoch(net, plan, record, history, stopper, progress, epoch, logs, seconds):
    """After an epoch's logs: early stopping, callbacks, the schedule's step, progress. True
    when training stops here (``history.stopped_reason`` set)."""
    stop_early = False
    if stopper is not None:
        stop_early = stopper.update(logs[plan.monitor], net.get_weights)
        if stopper.wait == 0 and stopper.best is not None:
            history._best = history.epochs_completed - 1
    stop_callback = False
    for cb in plan.callbacks:
        if cb(epoch, dict(logs)) is True:
            stop_callback = True
    if record.state is not None:
        plateau_monitor = "val_loss" if plan.val is not None else "loss"
        record.state.end_epoch(record.epoch, logs[plateau_monitor])
        record.epoch += 1
    progress.update(epoch, logs, seconds)
    if stop_early:
        assert stopper is not None  # only a stopper stops early
        history.stopped_reason = "early_stopping"
        if stopper.best_weights is not None:
            net.set_weights(stopper.best_weights)
            history.restored_best_weights = True
        best = history.best_epoch
        monitor = plan.monitor
        progress.message(
            f"early stopping after epoch {epoch}: {monitor} has not improved for "
            f"{stopper.wait} epochs; best {monitor} {stopper.best:.6g} in epoch "
            f"{history.epoch[best] if best is not None else '?'}"
            + (" (weights restored)" if history.restored_best_weights else "")
        )
        return True
    if stop_callback:
        history.stopped_reason = "callback"
        progress.message(f"stopped by a callback after epoch {epoch}")
        return True
    return False
