"""scikit-learn estimators backed by ferrinet: ``MLPClassifier`` and ``MLPRegressor``.

A thin Python layer over ``ferrinet.NeuralNetwork``: every epoch runs in Rust
(``NeuralNetwork.train_epoch``, the GIL released); this module only does what scikit-learn's
``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` do around their epochs (input
validation, label encoding, the validation split, the stopping rule, the learning-rate
schedules), with scikit-learn's parameter names, defaults and fitted attributes, so that::

    from ferrinet.sklearn import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=200, random_state=0).fit(X, y)

is a drop-in replacement that passes scikit-learn's own estimator checks and works in
``Pipeline``, ``GridSearchCV``, ``cross_val_score``, ``clone`` and pickle. Needs scikit-learn
>= 1.6 (``pip install ferrinet[sklearn]``); ``import ferrinet`` alone never imports it.

The objective (the same as scikit-learn's, written out)
-------------------------------------------------------
For a mini-batch B of n_B samples with weights w_k (1 without sample_weight / class_weight),
S_B = sum of w_k, and W the weight matrices (not the intercepts), scikit-learn's stochastic
solvers take the gradient of (``sklearn/neural_network/_multilayer_perceptron.py``,
``_backprop``; user guide section 1.17.7 "Mathematical formulation")::

    J_B = (1/S_B) sum_k w_k loss_k  +  alpha / (2 S_B) * ||W||^2

    loss_k = -sum_i y_ki log p_ki                         softmax output (multiclass)
           = -sum_i [y_ki log p_ki + (1-y_ki) log(1-p_ki)]  logistic outputs (binary, multilabel)
           = 1/2 sum_i (p_ki - y_ki)^2                      identity outputs (regression)
           = sum_i [y_ki log(y_ki / p_ki) - y_ki + p_ki]    exp outputs (loss='poisson')

(the sums run over the m = ``n_outputs_`` outputs). ferrinet's own objective
(docs/maths.md) is ``L_B = (1/S_B) sum_k w_k l_k + (l2/2) ||W||^2`` with ``l_k`` the *mean*
over outputs for mse and binary_cross_entropy (PyTorch's reductions) and the sum for
cross_entropy. So ``J_B = c * L_B`` when

    c = 1 (softmax / cross_entropy),  c = m (logistic / binary_cross_entropy),
    c = m / 2 (identity / mse),        c = m (exp / poisson),   and  l2 = alpha / (c * S_B).

This module trains ferrinet on L_B with that ``l2`` and rescales what the optimizer sees so
that the steps are scikit-learn's: SGD runs with ``lr = c * learning_rate`` (then every SGD /
momentum / Nesterov step is identical to scikit-learn's), Adam with ``eps = epsilon / c``
(Adam is invariant to the scale of the gradient except through eps), and with scikit-learn's
placement of eps (``ferrinet.optim.Adam(eps_placement="sklearn")``: added to sqrt(v_t), the
bias corrections folded into the step size). ``loss_curve_`` reports
``c * L`` (scikit-learn's units: mean log-loss, or half squared error, plus the penalty).

With shuffle, scikit-learn's own permutation (``sklearn.utils.shuffle`` with the estimator's
``random_state``) is drawn in Python and the batches are handed to ferrinet in that order, and
the weights are initialised exactly as scikit-learn does (Glorot-uniform weights *and*
intercepts in ``[-b, b]``, ``b = sqrt(6 / (fan_in + fan_out))``, ``sqrt(2 / ...)`` for
logistic, drawn from the same random state in the same order). So with ``solver='sgd'`` (and
no dropout) a ferrinet estimator follows scikit-learn's trajectory to rounding:
tests/test_sklearn.py holds the weights of both to 1e-12 after 6 epochs (measured 4.5e-16);
with ``solver='adam'`` to 1e-10 relative.

``solver='lbfgs'`` runs scikit-learn's ``_fit_lbfgs``: ``scipy.optimize.minimize(method=
'L-BFGS-B', jac=True)`` over all parameters packed as scikit-learn packs them, its options
(``max_iter``, ``max_fun``, ``tol``, ``verbose``), its ConvergenceWarning and ``n_iter_``; the
loss value is scikit-learn's (its log-loss clips probabilities to [eps, 1 - eps]: L-BFGS-B's
line search compares values, so they must be the same numbers: it is computed from the
outputs of the same pass), the gradient ferrinet's full-batch backward pass, already in
scikit-learn's packing (``NeuralNetwork.loss_and_gradient``'s flat entry). From the same
initial weights the loss after each iteration equals scikit-learn's to ~1e-11 relative over 20
iterations (tests/test_sklearn_compat.py; ~1e-14 with ``loss='poisson'``), as close as
scikit-learn is to itself on the same rows in another order.

The model is ``coefs_`` / ``intercepts_``, as in scikit-learn: they may be assigned or edited in
place, and the next ``predict``, ``partial_fit`` or warm-start ``fit`` uses them (they are
compared with what the network last held, ~60 us for 80,000 weights, and sent only when they
differ, ~1 ms). ``dtype=None`` (the default) follows X, as scikit-learn: float32 X gives a
float32 network, ``coefs_`` and outputs (lbfgs: float64, as scikit-learn's).

Differences from scikit-learn (also in docs/sklearn.md)
-------------------------------------------------------
- Sparse X (CSR/CSC) is accepted, as in scikit-learn, and never densified by the stochastic
  solvers; ``solver='lbfgs'`` makes it dense (its full-batch entry is dense only).
- ``MLPRegressor(loss='poisson')`` refuses negative targets (ValueError); scikit-learn
  documents ``y >= 0`` without checking it, and trains on a NaN loss.
- ``partial_fit`` does not exist with ``solver='lbfgs'`` for the regressor either
  (scikit-learn's regressor forgets to call its ``_check_solver`` in ``available_if``, so its
  ``partial_fit`` runs a full L-BFGS fit).
- lbfgs keeps ``loss_curve_`` (the loss after each iteration; scikit-learn sets none).
- SGD with a changing learning rate (``invscaling``, ``adaptive``) and momentum:
  scikit-learn's velocity keeps the learning rates of past steps (``v = mu v - lr_t g``),
  PyTorch's buffer does not (``p -= lr_t (mu b + g)``); they agree while lr is constant.
- Non-uniform sample weights with mini-batches: scikit-learn divides the penalty by the
  batch's own weight sum S_B; ferrinet uses one l2 per call, so this module uses
  ``S_B ~ n_B * mean(w)`` (exact for full batches and for constant weights).
- Multi-output regression (m > 1): scikit-learn's gradient is that of the objective above
  (squared errors summed over outputs), but its ``loss_curve_`` prints the squared error
  averaged over outputs (its ``squared_loss``). ``loss_curve_`` here reports the objective
  that is minimised (summed over outputs), so it is m times larger in its data term, and the
  ``tol`` rule (which reads ``loss_curve_``) sees that scale. Identical for m = 1.
- ``early_stopping``: the validation split is stratified for binary *and* multiclass targets
  (scikit-learn's documentation says so; its code stratifies binary targets only), not for
  multilabel ones, and falls back to a plain split when a class has fewer than 2 samples
  (where scikit-learn raises).
- ``momentum`` must be < 1 (scikit-learn allows 1.0, which never forgets a gradient).
- Divergence: a step that would make a weight or the loss non-finite is refused by ferrinet.
  Without early stopping: ValueError with scikit-learn's words first ("Solver produced
  non-finite parameter weights. The input data may contain large values and need to be
  preprocessed."), then what ferrinet saw; the estimator keeps the last finite weights
  (scikit-learn's holds the non-finite ones). With early stopping: the epoch is recorded as
  non-finite (``validation_scores_[-1]`` is nan, as scikit-learn's), training stops there
  (scikit-learn runs on with nan weights until its stopping rule fires) and the best epoch's
  weights are restored, with a ConvergenceWarning.

What scikit-learn does not have
-------------------------------
- ``activation`` may be a list with one name per hidden layer, and any hidden activation of
  ``ferrinet.ACTIVATIONS``: ``identity`` (``linear``), ``relu``, ``leaky_relu``, ``tanh``,
  ``logistic`` (= ``sigmoid``).
- ``dropout``: None, one rate for every hidden layer, or one per hidden layer (inverted
  dropout, training only; its masks come from ferrinet's generator, seeded from
  ``random_state``).
- ``class_weight`` (classifier): ``{label: weight}`` or ``"balanced"`` (``n / (n_classes *
  count)``), multiplied into the sample weights. Not for multilabel targets, and not
  ``"balanced"`` in ``partial_fit``.
- ``dtype``: None (default: follow X, as scikit-learn), ``"float64"`` or ``"float32"``,
  what the network computes in.
- ``fit(X, y, validation_data=(X_val, y_val[, sample_weight_val]))``: a validation set of
  your own. It is scored after every epoch (``validation_scores_``, accuracy / R^2, and
  ``validation_loss_curve_``, the loss without the penalty in ``loss_curve_``'s units); with
  ``early_stopping=True`` it replaces the ``validation_fraction`` split.
- ``network_``: the fitted ``ferrinet.NeuralNetwork`` (``ferrinet.interop`` converts to and
  from scikit-learn's own estimators).

Estimator checks
----------------
Both estimators pass every check of ``sklearn.utils.estimator_checks.parametrize_with_checks``
(scikit-learn 1.9: about 60 per estimator, the DataFrame ones when pandas is installed) with
the default ``dtype=None`` (float64 for float64 data) and with ``solver='lbfgs'``: the list of
expected failures is empty. With
``dtype='float32'`` one check is expected to fail, ``check_sample_weight_equivalence_on_dense_data``:
the weighted and the repeated fit differ by 1-2 float32 ulps and the check's tolerance
(rtol=1e-7) is below float32's resolution. ``expected_failed_checks(estimator)`` returns that
list (tests/test_sklearn_checks.py).
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

import numpy as np

_INSTALL_HINT = (
    "ferrinet.sklearn needs scikit-learn >= 1.6; install it with "
    "`pip install ferrinet[sklearn]` (or `pip install 'scikit-learn>=1.6'`)"
)

try:
    import sklearn
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, column_or_1d
    from sklearn.utils import shuffle as _sk_shuffle
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import (
        _check_partial_fit_first_call,
        check_classification_targets,
        type_of_target,
        unique_labels,
    )
    from sklearn.utils.optimize import _check_optimize_result
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as _err:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(f"{_INSTALL_HINT} ({_err})") from _err

from . import _validate
from . import optim as _optim
from ._core import ACTIVATIONS as _FERRINET_ACTIVATIONS
from ._core import DivergenceError, max_threads
from ._sparse import is_sparse
from ._validate import plain as _plain
from .network import NeuralNetwork
from .training import check_epoch_options

__all__ = ["MLPClassifier", "MLPRegressor", "expected_failed_checks"]

if tuple(int(p) for p in sklearn.__version__.split(".")[:2] if p.isdigit()) < (1, 6):
    raise ImportError(f"{_INSTALL_HINT}; found scikit-learn {sklearn.__version__}")

_FLOAT32_SAMPLE_WEIGHT_REASON = (
    "with dtype='float32' the fit on weighted samples and the fit on repeated samples differ "
    "by 1-2 float32 ulps (measured 2.8e-7 relative), and the check compares them with "
    "rtol=1e-7, below float32's resolution (eps = 1.2e-7); in float64 the check passes"
)


def expected_failed_checks(estimator: Any) -> Dict[str, str]:
    """The checks of ``sklearn.utils.estimator_checks`` that ``estimator`` is known to fail,
    ``{check name: reason}``, for ``parametrize_with_checks(..., expected_failed_checks=)``.

    With the default ``dtype=None`` or ``'float64'``: none. With ``dtype='float32'``:
    ``check_sample_weight_equivalence_on_dense_data`` and its ``_on_sparse_data`` twin
    (float32 rounding, see the reason).
    """
    failures = {}
    if getattr(estimator, "dtype", "float64") in ("float32", np.float32):
        failures["check_sample_weight_equivalence_on_dense_data"] = _FLOAT32_SAMPLE_WEIGHT_REASON
        failures["check_sample_weight_equivalence_on_sparse_data"] = _FLOAT32_SAMPLE_WEIGHT_REASON
    return failures


# scikit-learn's hidden activations and ferrinet's: name given -> ferrinet name.
_HIDDEN = {name: name for name in _FERRINET_ACTIVATIONS if name != "softmax"}
_HIDDEN["logistic"] = "sigmoid"
# ferrinet's output activation -> scikit-learn's out_activation_
_OUT_NAMES = {"softmax": "softmax", "sigmoid": "logistic", "identity": "identity", "exp": "exp"}


# --------------------------------------------------------------------------------------------
# Checks of hyper-parameters (at fit time, never in __init__, as scikit-learn requires):
# TypeError for the wrong kind of value, ValueError for a value out of range, both saying what
# was expected and what was given (ferrinet._validate).
# --------------------------------------------------------------------------------------------
def _hidden_sizes(value):
    if isinstance(value, (str, bytes)):
        raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints, got {value!r}")
    if not hasattr(value, "__iter__"):
        value = [value]
    sizes = []
    for i, size in enumerate(value):
        size = _plain(size)
        if isinstance(size, bool) or not isinstance(size, numbers.Integral):
            raise TypeError(
                f"hidden_layer_sizes must be positive integers, got {size!r} at position {i}"
            )
        if size < 1:
            raise ValueError(f"hidden_layer_sizes must be > 0, got {list(value)!r}")
        sizes.append(int(size))
    return sizes


def _activations(value, n_hidden):
    """One ferrinet name per hidden layer, from a name or a list of names."""
    valid = ", ".join(repr(k) for k in _HIDDEN)
    if isinstance(value, str):
        names = [value] * n_hidden
        if value not in _HIDDEN:
            raise ValueError(
                f"activation must be one of {valid} (or a list of them); got {value!r}"
            )
    else:
        if not isinstance(value, (list, tuple)):
            raise TypeError(
                f"activation must be a name or a list of names (one per hidden layer), got "
                f"{value!r}"
            )
        names = list(value)
        if len(names) != n_hidden:
            raise ValueError(
                f"activation: expected one name per hidden layer ({n_hidden}), got "
                f"{len(names)}: {names!r}"
            )
        for name in names:
            if not isinstance(name, str) or name not in _HIDDEN:
                raise ValueError(f"activation: each name must be one of {valid}; got {name!r}")
    return [_HIDDEN[name] for name in names]


def _n_threads(value):
    """None (the network's default, resolved where the network is built: inside a joblib
    worker that is the worker's limit) or an int in [1, ferrinet.max_threads()] (ValueError
    beyond: more threads than the machine can run only queue for its cores)."""
    if value is None:
        return None
    n = _validate.integer(value, "n_threads", 1)
    limit = max_threads()
    if n > limit:
        raise ValueError(
            f"n_threads must be at most {limit} on this machine (ferrinet.max_threads(): 4 per "
            f"available CPU, at most 256), got {n}"
        )
    return n


def _dtype(value):
    if value is None:
        return None  # follow the input, as scikit-learn
    try:
        name = np.dtype(value).name
    except TypeError:
        name = None
    if name not in ("float64", "float32"):
        raise ValueError(f"dtype must be None, 'float64' or 'float32', got {value!r}")
    return name


@dataclass
class _Epochs:
    """What every epoch of ``_BaseMLP._fit`` uses (``sample_idx``: the running permutation,
    shuffled again each epoch as scikit-learn does)."""

    X: Any
    T: Any
    weights: Any
    batch_size: int
    parts: list  # (start, stop, l2): the whole batches, then the last smaller one
    c: float  # _scale(): the loss's unit, scikit-learn's
    sample_idx: Any


class _Params:
    """The hyper-parameters, checked and normalised."""

    hidden: List[int]
    activations: List[str]
    solver: str
    alpha: float
    batch_size: Union[str, int]
    learning_rate: str
    learning_rate_init: float
    power_t: float
    max_iter: int
    shuffle: bool
    tol: float
    verbose: int
    warm_start: bool
    momentum: float
    nesterov: bool
    early_stopping: bool
    validation_fraction: float
    beta_1: float
    beta_2: float
    epsilon: float
    n_iter_no_change: float
    rates: List[float]
    dtype: Optional[str]  # None: follow the input
    max_fun: int
    n_threads: Optional[int]


def xlogy(x, y):
    """x * log(y), 0 where x == 0 (scipy.special.xlogy; scipy comes with scikit-learn)."""
    from scipy.special import xlogy as _xlogy

    return _xlogy(x, y)


_NON_FINITE = (
    "Solver produced non-finite parameter weights. The input data may contain large values "
    "and need to be preprocessed."
)  # scikit-learn's words, which code matches on

#: Shuffled epochs gather at most this many bytes of X at a time (whole batches; _fit_epoch).
_GATHER_BYTES = 1 << 24
#: The same for sparse X, smaller: a sparse matrix is often small next to the network's wide
#: first layer, so a gather is a larger share of fit's peak memory (bench_sparse), and CSR rows
#: cost the same to gather in smaller pieces.
_SPARSE_GATHER_BYTES = 1 << 22


def _scipy_below_1_15():
    # scipy 1.15 deprecated L-BFGS-B's iprint (scikit-learn passes it only before that)
    import scipy

    version = tuple(int(v) for v in scipy.__version__.split(".")[:2] if v.isdigit())
    return version < (1, 15)


class _Optimizer:
    """``_optimizer`` after a fit with a stochastic solver: what scikit-learn's
    ``SGDOptimizer`` / ``AdamOptimizer`` expose and its code and tests read, as plain values
    (the moments themselves live in ferrinet's core). ``learning_rate`` is scikit-learn's:
    SGD's current rate (after ``invscaling`` / ``adaptive``), Adam's bias-corrected step size
    ``learning_rate_init * sqrt(1 - beta_2^t) / (1 - beta_1^t)`` after ``t`` updates (the
    number of mini-batch steps taken by this run; ``learning_rate_init`` before any)."""

    def __init__(self, name, **values):
        self.name = name
        self.__dict__.update(values)

    def __repr__(self):
        items = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if k != "name")
        return f"_Optimizer({self.name!r}, {items})"


# --------------------------------------------------------------------------------------------
# The shared estimator
# --------------------------------------------------------------------------------------------
class _BaseMLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share (see the module docstring)."""

    _estimator_is_classifier = False

    # fitted attributes that may be None (declared for type checkers; set by fit only)
    best_loss_: Optional[float]
    validation_scores_: Optional[List[float]]
    best_validation_score_: Optional[float]
    validation_loss_curve_: Optional[List[float]]

    # ----- parameters
    def _check_params(self, incremental):
        p = _Params()
        p.hidden = _hidden_sizes(self.hidden_layer_sizes)
        p.activations = _activations(self.activation, len(p.hidden))
        p.solver = _validate.choice(self.solver, "solver", ("lbfgs", "sgd", "adam"))
        p.alpha = _validate.l2_penalty(self.alpha, "alpha")
        if isinstance(self.batch_size, str):
            if self.batch_size != "auto":
                raise ValueError(
                    f"batch_size must be 'auto' or an integer >= 1, got {self.batch_size!r}"
                )
            p.batch_size = "auto"
        else:
            p.batch_size = _validate.integer(self.batch_size, "batch_size", 1)
        p.learning_rate = _validate.choice(
            self.learning_rate, "learning_rate", ("constant", "invscaling", "adaptive")
        )
        p.learning_rate_init = _validate.real(
            self.learning_rate_init, "learning_rate_init", low=0.0, low_open=True
        )
        p.power_t = _validate.real(self.power_t, "power_t", low=0.0)
        p.max_iter = _validate.integer(self.max_iter, "max_iter", 1)
        p.shuffle = _validate.flag(self.shuffle, "shuffle")
        p.tol = _validate.real(self.tol, "tol", low=0.0)
        verbose = _plain(self.verbose)
        if not isinstance(verbose, numbers.Integral):
            raise TypeError(f"verbose must be a bool or an int, got {verbose!r}")
        p.verbose = int(verbose)
        p.warm_start = _validate.flag(self.warm_start, "warm_start")
        p.momentum = _validate.real(self.momentum, "momentum", low=0.0, high=1.0, high_open=True)
        p.nesterov = _validate.flag(self.nesterovs_momentum, "nesterovs_momentum")
        p.early_stopping = _validate.flag(self.early_stopping, "early_stopping")
        p.validation_fraction = _validate.real(
            self.validation_fraction, "validation_fraction", low=0.0, high=1.0, high_open=True
        )
        p.beta_1 = _validate.real(self.beta_1, "beta_1", low=0.0, high=1.0, high_open=True)
        p.beta_2 = _validate.real(self.beta_2, "beta_2", low=0.0, high=1.0, high_open=True)
        p.epsilon = _validate.real(self.epsilon, "epsilon", low=0.0, low_open=True)
        n_iter_no_change = _plain(self.n_iter_no_change)
        if isinstance(n_iter_no_change, float) and n_iter_no_change == np.inf:
            p.n_iter_no_change = np.inf
        else:
            p.n_iter_no_change = _validate.integer(
                n_iter_no_change, "n_iter_no_change (or np.inf)", 1
            )
        p.max_fun = _validate.integer(self.max_fun, "max_fun", 1)  # L-BFGS's
        n_hidden = len(p.hidden)
        p.rates = check_epoch_options(n_hidden, 1, True, 0.0, self.dropout, None)[3]
        if p.solver == "lbfgs" and any(r > 0.0 for r in p.rates):
            raise ValueError(
                f"dropout={self.dropout!r} cannot be used with solver='lbfgs': L-BFGS needs a "
                "deterministic loss; use solver='adam' or 'sgd' with dropout"
            )
        p.dtype = _dtype(self.dtype)
        p.n_threads = _n_threads(self.n_threads)
        if p.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        return p

    # ----- the network
    def _init_factor(self, layer, acts):
        """scikit-learn's Glorot factor: 2 for logistic layers, else 6. The output layer
        follows the last hidden layer; with a single name, every layer follows it."""
        if isinstance(self.activation, str):
            name = _HIDDEN.get(self.activation)
        elif acts:
            name = acts[min(layer, len(acts) - 1)]
        else:
            name = None
        return 2.0 if name == "sigmoid" else 6.0

    def _new_network(self, p, units, out_activation, loss):
        self.n_outputs_ = units[-1]
        self.n_layers_ = len(units)
        self.out_activation_ = _OUT_NAMES[out_activation]
        return NeuralNetwork(
            units,
            activation=p.activations,
            output_activation=out_activation,
            loss=loss,
            seed=0,
            dtype=p.dtype,
        )

    def _initialize(self, p, n_features, n_outputs, out_activation, loss):
        """scikit-learn's ``_initialize``: the network, its weights drawn as scikit-learn
        draws them (same random state, same order), and the bookkeeping."""
        self.n_iter_ = 0
        self.t_ = 0
        units = [n_features] + p.hidden + [n_outputs]
        net = self._new_network(p, units, out_activation, loss)
        rs = self._random_state
        weights = []
        for i, (fan_in, fan_out) in enumerate(zip(units[:-1], units[1:])):
            bound = np.sqrt(self._init_factor(i, p.activations) / (fan_in + fan_out))
            coef = rs.uniform(-bound, bound, (fan_in, fan_out))
            intercept = rs.uniform(-bound, bound, fan_out)
            weights.append((coef.T, intercept))
        net.set_weights(weights)
        self._net = net
        self._store_weights(in_place=False)
        self._start_bookkeeping(p)

    def _start_bookkeeping(self, p, keep=False):
        """What ``_initialize`` sets besides the weights. ``keep``: only what is missing
        (``coefs_`` given by hand before the first ``partial_fit`` / warm-start ``fit``, as in
        scikit-learn's worked example)."""

        def put(name, value):
            if not keep or not hasattr(self, name):
                setattr(self, name, value)

        put("n_iter_", 0)
        put("t_", 0)
        # the generator of dropout masks; drawn only when there is dropout, so that without
        # it the random state's stream is exactly scikit-learn's
        self._run_seed = (
            int(self._random_state.randint(0, 2**31 - 1)) if any(r > 0 for r in p.rates) else 0
        )
        # the weights early stopping returns to: a whole copy, so made only when it is on
        self._best_weights = self._net.get_weights() if p.early_stopping else None
        self._lr = p.learning_rate_init
        # loss_curve_ with lbfgs: ferrinet's addition (scikit-learn sets none), one value per
        # L-BFGS iteration
        put("loss_curve_", [])
        put("_no_improvement_count", 0)
        put("validation_loss_curve_", None)
        if p.solver == "lbfgs":
            return  # scikit-learn sets neither best_loss_ nor the validation scores
        if p.early_stopping:
            put("validation_scores_", [])
            put("best_validation_score_", -np.inf)
            put("best_loss_", None)
        else:
            put("best_loss_", np.inf)
            put("validation_scores_", None)
            put("best_validation_score_", None)

    def _adopt_coefs(self, p, n_features, n_outputs, out_activation, loss):
        """A network built around ``coefs_`` / ``intercepts_`` set by hand on an estimator that
        has none (scikit-learn lets ``partial_fit`` and warm-start ``fit`` start from them)."""
        coefs, intercepts = self._checked_weight_lists()
        units = [n_features] + p.hidden + [n_outputs]
        given = [coefs[0].shape[0]] + [c.shape[1] for c in coefs] if coefs else []
        if given != units or [b.shape for b in intercepts] != [(u,) for u in units[1:]]:
            raise ValueError(
                f"coefs_ / intercepts_ set by hand have shapes {[c.shape for c in coefs]} / "
                f"{[b.shape for b in intercepts]}, but the data and hidden_layer_sizes describe "
                f"layer sizes {units}"
            )
        self._net = self._new_network(p, units, out_activation, loss)
        self._push_weights()
        self._start_bookkeeping(p, keep=True)

    def _checked_weight_lists(self):
        coefs, intercepts = self.coefs_, self.intercepts_
        if not isinstance(coefs, (list, tuple)) or not isinstance(intercepts, (list, tuple)):
            raise TypeError(
                "coefs_ and intercepts_ must be lists of arrays (one per layer), got "
                f"{type(coefs).__name__} and {type(intercepts).__name__}"
            )
        return [np.asarray(c) for c in coefs], [np.asarray(b) for b in intercepts]

    def _push_weights(self):
        """``coefs_`` / ``intercepts_`` -> the network, when they differ from what it holds.

        scikit-learn's ``coefs_`` are the model: a user may assign them or edit them in place,
        and the next ``predict``, ``partial_fit`` or warm-start ``fit`` uses them. The network
        keeps its own copy, so every use compares the lists with the network's weights, in
        the core and in place (``_layer_equals``: no copy of either side; ~5 ms for 5,000,000
        weights), and sends them only when they differ (a send costs more, and checks them)."""
        net = self._net
        coefs, intercepts = self.__dict__.get("coefs_"), self.__dict__.get("intercepts_")
        n_layers = len(net.sizes) - 1
        if (
            isinstance(coefs, (list, tuple))
            and isinstance(intercepts, (list, tuple))
            and len(coefs) == n_layers
            and len(intercepts) == n_layers
            and all(net._layer_equals(i, c, b) for i, (c, b) in enumerate(zip(coefs, intercepts)))
        ):
            return
        coefs, intercepts = self._checked_weight_lists()
        want = [(a, b) for a, b in zip(net.sizes[:-1], net.sizes[1:])]
        if [c.shape for c in coefs] != want or [b.shape for b in intercepts] != [
            (b,) for _, b in want
        ]:
            raise ValueError(
                f"coefs_ / intercepts_ have shapes {[c.shape for c in coefs]} / "
                f"{[b.shape for b in intercepts]}; the fitted network needs {want} / "
                f"{[(b,) for _, b in want]}"
            )
        for i, a in enumerate(coefs + intercepts):
            if a.dtype.kind not in "iuf" or not np.all(np.isfinite(a)):
                what = f"coefs_[{i}]" if i < len(coefs) else f"intercepts_[{i - len(coefs)}]"
                raise ValueError(f"{what} must hold finite real numbers")
        net.set_weights([(c.T, b) for c, b in zip(coefs, intercepts)])

    def _store_weights(self, in_place=True):
        """The network's weights -> ``coefs_`` (transposed: (n_in, n_out)) and
        ``intercepts_``. ``in_place``: into the arrays already there when they fit (shape,
        dtype, writeable), as scikit-learn's stochastic solvers update them; else new lists.
        The core writes each layer straight into its arrays (``_copy_layer_into``): no
        intermediate copy of the weights in flight (for a large first layer, fit's peak
        memory)."""
        net = self._net
        dtype = np.dtype(net.dtype)
        n_layers = len(net.sizes) - 1
        old_c, old_b = self.__dict__.get("coefs_"), self.__dict__.get("intercepts_")
        reuse = (
            in_place
            and isinstance(old_c, list)
            and isinstance(old_b, list)
            and len(old_c) == n_layers
            and len(old_b) == n_layers
        )
        coefs: List[Any] = old_c if reuse and isinstance(old_c, list) else [None] * n_layers
        intercepts: List[Any] = old_b if reuse and isinstance(old_b, list) else [None] * n_layers
        for i, shape in enumerate(zip(net.sizes[:-1], net.sizes[1:])):
            for held, want in ((coefs, shape), (intercepts, shape[1:])):
                o = held[i]
                if not (
                    isinstance(o, np.ndarray)
                    and o.shape == want
                    and o.dtype == dtype
                    and o.flags.writeable
                ):
                    held[i] = np.empty(want, dtype=dtype)
            net._copy_layer_into(i, coefs[i], intercepts[i])
        if not reuse:
            self.coefs_, self.intercepts_ = coefs, intercepts

    @property
    def network_(self):
        """The fitted ``ferrinet.NeuralNetwork``, holding ``coefs_`` / ``intercepts_`` (sent
        to it first if they were edited)."""
        if "_net" not in self.__dict__:
            raise AttributeError(f"This {type(self).__name__} instance is not fitted yet")
        self._push_weights()
        return self._net

    def _scale(self):
        """c of the module docstring: scikit-learn's objective = c * ferrinet's."""
        m = self.n_outputs_
        scales = {"softmax": 1.0, "logistic": float(m), "identity": m / 2.0, "exp": float(m)}
        return scales[self.out_activation_]

    def _make_optimizer(self, p):
        c = self._scale()
        if p.solver == "sgd":
            return _optim.SGD(
                lr=c * p.learning_rate_init,
                momentum=p.momentum,
                nesterov=p.nesterov and p.momentum > 0.0,
            )
        # scikit-learn's Adam (eps added to the uncorrected sqrt(v)); eps / c because ferrinet's
        # gradients are scikit-learn's / c, and Adam's step depends on their scale only there
        return _optim.Adam(
            lr=p.learning_rate_init,
            betas=(p.beta_1, p.beta_2),
            eps=p.epsilon / c,
            eps_placement="sklearn",
        )

    def _optimizer_view(self, p):
        """``_optimizer`` as scikit-learn's code reads it after a fit (see ``_Optimizer``)."""
        run = self._net.training_state
        t = 0 if run is None else int(run.t)
        if p.solver == "sgd":
            return _Optimizer(
                "sgd",
                learning_rate_init=p.learning_rate_init,
                learning_rate=float(self._lr),
                lr_schedule=p.learning_rate,
                momentum=p.momentum,
                nesterov=p.nesterov,
                power_t=p.power_t,
                t=t,
            )
        lr = p.learning_rate_init
        if t > 0:  # AdamOptimizer's step size after t updates (its bias corrections)
            lr = lr * np.sqrt(1.0 - p.beta_2**t) / (1.0 - p.beta_1**t)
        return _Optimizer(
            "adam",
            learning_rate_init=p.learning_rate_init,
            learning_rate=float(lr),
            beta_1=p.beta_1,
            beta_2=p.beta_2,
            epsilon=p.epsilon,
            t=t,
        )

    def _check_architecture(self, p, n_outputs, out_activation=None):
        net = self._net
        if out_activation is not None and net.activations[-1] != out_activation:
            raise ValueError(
                "warm_start=True / partial_fit continue the fitted network, whose output is "
                f"{_OUT_NAMES[net.activations[-1]]!r}, but the parameters now ask for "
                f"{_OUT_NAMES[out_activation]!r} (another loss?); set warm_start=False to start "
                "afresh"
            )
        want = [net.sizes[0]] + p.hidden + [n_outputs]
        if net.sizes != want or net.activations[:-1] != p.activations or net.dtype != p.dtype:
            raise ValueError(
                "warm_start=True / partial_fit continue the fitted network "
                f"{net!r}, but the parameters now describe sizes {want}, hidden activations "
                f"{p.activations}, dtype {p.dtype!r}; set warm_start=False to start afresh"
            )

    def _resolve_dtype(self, p, X, first_pass):
        """What the network computes in: the ``dtype`` parameter when given; else, as
        scikit-learn, the input's for a new network with the stochastic solvers (float32 X ->
        float32 weights), float64 with lbfgs (scipy's L-BFGS-B works in float64 and
        scikit-learn's lbfgs returns float64 weights), and the current network's when
        continuing."""
        if p.dtype is not None:
            return p.dtype
        if not first_pass:
            if "_net" in self.__dict__:
                return self._net.dtype
            coefs = self.__dict__.get("coefs_")
            first = np.asarray(coefs[0]) if isinstance(coefs, (list, tuple)) and coefs else None
            return "float32" if first is not None and first.dtype == np.float32 else "float64"
        if p.solver == "lbfgs":
            return "float64"
        return "float32" if X.dtype == np.float32 else "float64"

    # ----- sample weights
    def _weights(self, sample_weight, X, y_labels, incremental):
        """sample_weight times class_weight (classifier), as a float64 array, or None."""
        w = None
        if sample_weight is not None:
            w = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        cw = self._class_weight_factors(y_labels, incremental)
        if cw is not None:
            w = cw if w is None else w * cw
        return w

    def _class_weight_factors(self, y_labels, incremental):
        return None

    # ----- fit, in phases: check, start or continue, one epoch at a time, finish
    def _fit(self, X, y, sample_weight=None, incremental=False, validation_data=None):
        p = self._check_params(incremental)
        first_pass = not hasattr(self, "coefs_") or (not p.warm_start and not incremental)
        X, y_labels, T = self._validate_input(X, y, incremental, reset=first_pass)
        weights = self._weights(sample_weight, X, y_labels, incremental)
        n_outputs, out_activation, loss = self._output_spec(T)
        p.dtype = self._resolve_dtype(p, X, first_pass)
        if p.solver == "lbfgs" and validation_data is not None:
            raise ValueError(
                "validation_data is scored after every epoch, and solver='lbfgs' has no "
                "epochs; use solver='adam' or 'sgd', or score the fitted estimator"
            )
        val = None
        if validation_data is not None:
            val = self._validate_validation_data(validation_data, n_outputs)

        self._start_or_continue(p, first_pass, incremental, X, n_outputs, out_activation, loss)
        if p.solver == "lbfgs":
            self._fit_lbfgs(p, X, T, weights)
            return self
        if p.early_stopping and val is None:
            val, X, y_labels, T, weights = self._split(p, X, y_labels, T, weights)
        if p.early_stopping and self.__dict__.get("_best_weights") is None:
            # a warm start turning early stopping on: the weights it starts from come first
            self._best_weights = self._net.get_weights()
        if val is not None:
            if self.validation_scores_ is None:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
            if self.validation_loss_curve_ is None:
                self.validation_loss_curve_ = []
        epochs = self._plan_epochs(p, X, T, weights)
        if self._net.training_state is None:
            # a new optimizer run: moments and step count at zero, the dropout generator seeded
            self._net._start_run(self._opt, self._run_seed)
            if self._lr != p.learning_rate_init:
                # partial_fit restarting a run (e.g. after unpickling): keep the lr reached
                self._set_lr(p, self._lr)

        try:
            self.n_iter_ = 0
            for _ in range(p.max_iter):
                if self._fit_epoch(p, epochs, val, incremental):
                    break
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        except DivergenceError as err:
            self._diverged(p, epochs, val, err)

        if p.early_stopping:
            self._net.set_weights(self._best_weights)
        self._store_weights()
        self._optimizer = self._optimizer_view(p)
        return self

    def _diverged(self, p, e, val, err):
        """A step would have made the loss or a weight non-finite (ferrinet refused it; the
        network holds the last finite weights). With early stopping, as scikit-learn: the
        epoch is recorded as non-finite, the best epoch's weights come back (the caller
        restores them) and a ConvergenceWarning says so. Without: scikit-learn's ValueError,
        the estimator keeping the last finite weights."""
        self._store_weights()
        self._optimizer = self._optimizer_view(p)
        if not p.early_stopping:
            raise ValueError(
                f"{_NON_FINITE} (ferrinet refused the step at epoch {self.n_iter_ + 1}: {err}; "
                "the estimator keeps the last finite weights; a smaller learning_rate_init may "
                "also help)"
            ) from err
        self.n_iter_ += 1
        self.t_ += e.X.shape[0]
        self.loss_ = np.nan
        self.loss_curve_.append(np.nan)
        assert self.validation_scores_ is not None
        self.validation_scores_.append(np.nan)
        if self.validation_loss_curve_ is not None:
            self.validation_loss_curve_.append(np.nan)
        best = int(np.nanargmax(self.validation_scores_)) + 1 if self.n_iter_ > 1 else 0
        warnings.warn(
            f"{_NON_FINITE} (at iteration {self.n_iter_}: {err}). Training stopped there; the "
            f"weights of the best validation score (iteration {best}) are kept.",
            ConvergenceWarning,
            stacklevel=4,
        )

    def _start_or_continue(self, p, first_pass, incremental, X, n_outputs, out_activation, loss):
        """A new network (first pass) or the current one checked (built around ``coefs_``
        given by hand), ``coefs_`` sent to it, and a new optimizer run unless partial_fit
        continues one."""
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(p, X.shape[1], n_outputs, out_activation, loss)
        elif "_net" not in self.__dict__:
            self._adopt_coefs(p, X.shape[1], n_outputs, out_activation, loss)
        else:
            self._check_architecture(p, n_outputs, out_activation)
            self._push_weights()
        self._net.n_threads = p.n_threads
        if p.solver == "lbfgs":
            # no optimizer state: scikit-learn's lbfgs has none either
            self._net.reset_training()
            for name in ("_opt", "_optimizer"):
                self.__dict__.pop(name, None)
        elif not incremental or not hasattr(self, "_opt"):
            # scikit-learn builds a new optimizer for every fit (also with warm_start) and
            # keeps it across partial_fit calls (a partial_fit after fit continues fit's)
            self._net.reset_training()
            self._lr = p.learning_rate_init
            self._opt = self._make_optimizer(p)

    # ----- L-BFGS
    def _fit_lbfgs(self, p, X, T, weights):
        """scikit-learn's ``_fit_lbfgs``: ``scipy.optimize.minimize(method='L-BFGS-B',
        jac=True)`` over every parameter packed in one float64 vector, scikit-learn's packing
        (``coefs_[0].ravel()``, ..., then ``intercepts_[0]``, ...; ``coefs_[i]`` is (n_in,
        n_out)), on the full-batch objective

            J(theta) = (1/S) sum_k w_k loss_k + alpha / (2 S) ||W||^2,   S = sum of w_k (= n)

        = c * ferrinet's loss with ``l2 = alpha / (c S)`` (module docstring); its gradient is
        c times ferrinet's. Options as scikit-learn's: ``maxiter=max_iter``, ``maxfun=max_fun``,
        ``gtol=tol``, ``iprint`` from ``verbose`` (scipy < 1.15). ``n_iter_``, ``loss_`` and
        the ConvergenceWarning are scikit-learn's (``_check_optimize_result``);
        ``loss_curve_`` (ferrinet's addition) gets J after every iteration."""
        import scipy.optimize
        from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

        net = self._net
        c = self._scale()
        if is_sparse(X):  # the full-batch loss-and-gradient entry is dense only (see docs)
            X = X.toarray()
        X = np.ascontiguousarray(X, dtype=net.dtype)
        if T.dtype.kind == "f":
            T = np.ascontiguousarray(T, dtype=net.dtype)
        if weights is not None and not weights.sum() > 0.0:
            raise ValueError(
                "the sample weights (sample_weight times class_weight) of the training data "
                "sum to 0; nothing to learn from"
            )
        total = float(X.shape[0] if weights is None else weights.sum())
        l2 = p.alpha / (c * total)
        # scikit-learn's packing (its _pack of coefs_ / intercepts_), which the network's flat
        # vector follows: coefs_ were sent to the network by _start_or_continue
        x0 = net.get_flat_parameters()
        last = {}
        sizes = net.sizes
        n_coefs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

        def loss_and_grad(x):
            if not np.all(np.isfinite(x)):
                return np.inf, np.zeros_like(x)
            net.set_flat_parameters(x)
            # One blocked forward and backward pass in Rust gives the flat gradient and the
            # outputs; the value is computed from those outputs as scikit-learn computes it
            # (its clipped log-loss: L-BFGS-B's line search compares values, so saturated
            # trial points must score the same numbers; ferrinet's own log-loss, exact from
            # the logits, does not clip)
            _, grad, out = net._loss_gradient_outputs(X, T, l2, weights)
            data = self._lbfgs_data_loss(out, T, weights)
            w = x[:n_coefs]
            loss = data + 0.5 * p.alpha * float(np.dot(w, w)) / total
            last["x"], last["f"] = x.copy(), loss
            return loss, c * grad

        curve = []

        def callback(xk):
            if "x" in last and np.array_equal(xk, last["x"]):
                curve.append(float(last["f"]))
            else:  # the iterate is not the last point evaluated (not seen with L-BFGS-B)
                curve.append(float(loss_and_grad(xk)[0]))

        iprint = 1 if p.verbose >= 1 else -1
        extra = {"iprint": iprint} if _scipy_below_1_15() else {}
        try:
            # L-BFGS-B's own vector work is small: BLAS threads only fight over the cores
            # (measured 10.5 ms per iteration with OpenBLAS's threads on a busy 2-core
            # machine, 0.7 ms with one); ferrinet's passes keep their own n_threads
            with threadpool_limits(limits=1, user_api="blas"):
                res = scipy.optimize.minimize(
                    loss_and_grad,
                    x0,
                    method="L-BFGS-B",
                    jac=True,
                    callback=callback,
                    options={"maxfun": p.max_fun, "maxiter": p.max_iter, "gtol": p.tol, **extra},
                )
        except BaseException:
            net.set_flat_parameters(x0)  # a failed call leaves the weights as they were
            raise
        if not (np.all(np.isfinite(res.x)) and np.isfinite(res.fun)):
            net.set_flat_parameters(x0)
            raise ValueError(
                f"{_NON_FINITE} (L-BFGS-B ended at a non-finite point, loss {res.fun}; the "
                "estimator keeps the weights it started from)"
            )
        self.n_iter_ = _check_optimize_result("lbfgs", res, p.max_iter)
        self.loss_ = float(res.fun)
        self.loss_curve_.extend(curve)
        net.set_flat_parameters(res.x)
        # as scikit-learn's _unpack: new arrays in coefs_ / intercepts_
        self._store_weights(in_place=False)

    def _lbfgs_data_loss(self, out, T, weights):
        """scikit-learn's data term (``sklearn/neural_network/_base.py``) from the network's
        outputs: the log-loss with probabilities clipped to [eps, 1 - eps] (softmax: T holds
        class indices; logistic: summed over the outputs), half the Poisson deviance (exp
        outputs, summed over them), or half the squared error summed
        over the outputs (scikit-learn averages it over outputs while its gradient sums them;
        ferrinet keeps value and gradient consistent; the same for one output), each
        averaged over the samples with their weights."""
        out = np.asarray(out, dtype=np.float64)
        if self.out_activation_ == "identity":
            per_sample = 0.5 * np.sum((T - out) ** 2, axis=1)
        elif self.out_activation_ == "exp":  # half the Poisson deviance, summed over outputs
            per_sample = np.sum(xlogy(T, T / out) - T + out, axis=1)
        else:
            eps = np.finfo(out.dtype).eps
            prob = np.clip(out, eps, 1 - eps)
            if self.out_activation_ == "softmax":
                per_sample = -np.log(prob[np.arange(len(T)), T])
            else:
                per_sample = -np.sum(xlogy(T, prob) + xlogy(1 - T, 1 - prob), axis=1)
        return float(np.average(per_sample, weights=weights))

    def _plan_epochs(self, p, X, T, weights):
        """What every epoch uses: the batch size, the arrays (in the network's dtype,
        C-contiguous, read in place: an np.memmap is not copied), the weights and the L2
        penalty of each part."""
        n = X.shape[0]
        if p.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if p.batch_size > n:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to "
                    "be clipped",
                    stacklevel=4,
                )
            batch_size = int(np.clip(p.batch_size, 1, n))
        if is_sparse(X):
            # one CSR copy at most (CSC converted, dtype changed); the epochs read it in place
            X = X.tocsr().astype(p.dtype, copy=False)
        else:
            X = np.ascontiguousarray(X, dtype=p.dtype)
        if T.dtype.kind == "f":
            T = np.ascontiguousarray(T, dtype=p.dtype)
        if weights is not None and not weights.sum() > 0.0:
            raise ValueError(
                "the sample weights (sample_weight times class_weight) of the training data "
                "sum to 0; nothing to learn from"
            )
        if weights is not None and np.all(weights == weights[0]):
            w_mean, weights = float(weights[0]), None  # the same objective, exactly
        else:
            w_mean = 1.0 if weights is None else float(weights.mean())
        c = self._scale()
        n_full = (n // batch_size) * batch_size
        parts = [(0, n_full, p.alpha / (c * batch_size * w_mean))]
        if n_full < n:  # scikit-learn divides the last, smaller batch's penalty by its size
            parts.append((n_full, n, p.alpha / (c * (n - n_full) * w_mean)))
        return _Epochs(X, T, weights, batch_size, parts, c, np.arange(n, dtype=int))

    def _fit_epoch(self, p, e, val, incremental):
        """One epoch (scikit-learn's iteration): True when training stops after it.

        Shuffled epochs gather their rows a few whole batches at a time (at most
        ``_GATHER_BYTES`` of X per gather, ``_SPARSE_GATHER_BYTES`` of a sparse X), not the
        whole of X: the same batches in the same order, one ``train_epoch`` call per gather,
        one gather alive at a time, and no copy of X (a memory map larger than memory stays on
        disk)."""
        if p.shuffle:
            e.sample_idx = _sk_shuffle(e.sample_idx, random_state=self._random_state)
        if is_sparse(e.X):  # a CSR row holds its nonzeros (value and column index)
            row_bytes = max(1, (e.X.data.nbytes + e.X.indices.nbytes) // max(1, e.X.shape[0]))
            gather_bytes = _SPARSE_GATHER_BYTES
        else:
            row_bytes = max(1, e.X.shape[1] * e.X.itemsize)
            gather_bytes = _GATHER_BYTES
        per_gather = max(1, gather_bytes // (row_bytes * e.batch_size)) * e.batch_size
        total = 0.0
        for start, stop, l2 in e.parts:
            step = per_gather if p.shuffle else max(1, stop - start)
            for a in range(start, stop, step):
                b = min(a + step, stop)
                if p.shuffle:
                    rows = e.sample_idx[a:b]
                    Xc, Tc = e.X[rows], e.T[rows]
                    wc = None if e.weights is None else e.weights[rows]
                else:
                    Xc, Tc = e.X[a:b], e.T[a:b]
                    wc = None if e.weights is None else e.weights[a:b]
                epoch_loss = self._net.train_epoch(
                    Xc,
                    Tc,
                    batch_size=e.batch_size,
                    optimizer=self._opt,
                    shuffle=False,
                    seed=None,  # the run is started before the first epoch; this continues it
                    l2=l2,
                    dropout=p.rates,
                    sample_weight=wc,
                )
                total += epoch_loss * (b - a)
                del Xc, Tc, wc  # before the next gather, not after it
        n = e.X.shape[0]
        self.n_iter_ += 1
        self.loss_ = e.c * total / n
        self.t_ += n
        self.loss_curve_.append(self.loss_)
        if p.verbose:
            print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
        if val is not None:
            self._validate_epoch(val, e.c, p.verbose)
        self._update_no_improvement_count(p.early_stopping, p.tol)
        if p.solver == "sgd" and p.learning_rate == "invscaling":
            self._set_lr(p, p.learning_rate_init / (self.t_ + 1) ** p.power_t)
        if self._no_improvement_count > p.n_iter_no_change and self._no_improvement(p):
            return True
        if incremental:
            return True
        if self.n_iter_ == p.max_iter:
            warnings.warn(
                "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                "optimization hasn't converged yet." % p.max_iter,
                ConvergenceWarning,
                stacklevel=4,
            )
        return False

    def _no_improvement(self, p):
        """n_iter_no_change epochs without improvement: the adaptive lr drops (False: go on),
        or training stops (True)."""
        what = "Validation score" if p.early_stopping else "Training loss"
        msg = "%s did not improve more than tol=%f for %d consecutive epochs." % (
            what,
            p.tol,
            p.n_iter_no_change,
        )
        if p.solver == "sgd" and p.learning_rate == "adaptive" and self._lr > 1e-6:
            self._set_lr(p, self._lr / 5.0)
            self._no_improvement_count = 0
            if p.verbose:
                print(msg + " Setting learning rate to %f" % self._lr)
            return False
        if p.verbose:
            print(msg + " Stopping.")
        return True

    def _set_lr(self, p, lr):
        """Set the current learning rate (scikit-learn's units) in the running optimizer."""
        self._lr = lr
        if self._net.training_state is not None:
            self._net.set_learning_rate(lr * self._scale() if p.solver == "sgd" else lr)

    def _split(self, p, X, y_labels, T, weights):
        """The early-stopping split: ``validation_fraction`` of the data, drawn with the
        estimator's random state (scikit-learn's ``train_test_split`` call), stratified by
        class for binary and multiclass targets."""
        stratify = None
        if self._estimator_is_classifier and self._label_binarizer.y_type_ in (
            "binary",
            "multiclass",
        ):
            codes = self._class_codes(y_labels)
            counts = np.bincount(codes)
            n_val = int(np.ceil(p.validation_fraction * len(codes)))
            k = np.count_nonzero(counts)
            if counts[counts > 0].min() >= 2 and k <= n_val and k <= len(codes) - n_val:
                stratify = codes
        arrays = [X, y_labels, T] + ([] if weights is None else [weights])
        parts = train_test_split(
            *arrays,
            random_state=self._random_state,
            test_size=p.validation_fraction,
            stratify=stratify,
        )
        train, held = parts[0::2], parts[1::2]
        if held[0].shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size "
                "of your dataset."
            )
        val = (held[0], held[1], held[2], held[3] if weights is not None else None)
        w_train = train[3] if weights is not None else None
        return val, train[0], train[1], train[2], w_train

    def _validate_epoch(self, val, c, verbose):
        Xv, yv, Tv, wv = val
        out = self._net.predict(Xv)
        if not np.all(np.isfinite(out)):
            score = np.nan
        else:
            score = self._score_outputs(out, yv, wv)
        assert self.validation_scores_ is not None and self.validation_loss_curve_ is not None
        self.validation_scores_.append(score)
        self.validation_loss_curve_.append(
            c * float(self._net.compute_loss(Xv, Tv, sample_weight=wv))
        )
        if verbose:
            print("Validation score: %f" % score)

    def _update_no_improvement_count(self, early_stopping, tol):
        """scikit-learn's ``_update_no_improvement_count``, word for word: with early
        stopping, an epoch fails when its validation score is below best + tol (the best
        score's weights are kept); without, when its loss is above best_loss - tol."""
        scores = self.validation_scores_
        if early_stopping:
            assert scores is not None
            best = -np.inf if self.best_validation_score_ is None else self.best_validation_score_
            last = scores[-1]
            if last < best + tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last > best:
                self.best_validation_score_ = last
                self._best_weights = self._net.get_weights()
        else:
            if scores:
                # a validation set given without early stopping: recorded, not used to stop
                if self.best_validation_score_ is None or scores[-1] > self.best_validation_score_:
                    self.best_validation_score_ = scores[-1]
            # (None after an early-stopping fit continued by a warm start without it)
            best_loss = np.inf if self.best_loss_ is None else self.best_loss_
            if self.loss_curve_[-1] > best_loss - tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < best_loss:
                self.best_loss_ = self.loss_curve_[-1]

    def _validate_validation_data(self, validation_data, n_outputs):
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise TypeError(
                "validation_data must be a pair (X_val, y_val) or a triple (X_val, y_val, "
                f"sample_weight_val), got {type(validation_data).__name__}"
                + (
                    f" of length {len(validation_data)}"
                    if hasattr(validation_data, "__len__")
                    else ""
                )
            )
        Xv, yv = validation_data[0], validation_data[1]
        wv = validation_data[2] if len(validation_data) == 3 else None
        Xv = validate_data(
            self, Xv, reset=False, dtype=(np.float64, np.float32), accept_sparse=["csr", "csc"]
        )
        yv_labels, Tv = self._encode_validation_targets(yv, Xv.shape[0], n_outputs)
        if wv is not None:
            wv = _check_sample_weight(wv, Xv, dtype=np.float64, ensure_non_negative=True)
        return (Xv, yv_labels, Tv, wv)

    # ----- predict
    def _forward(self, X):
        """The network's outputs, in ``result_type(X.dtype, network dtype)`` as scikit-learn's
        forward pass gives them (float64 input to a float32 network: float64 results)."""
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, dtype=(np.float64, np.float32), accept_sparse=["csr", "csc"]
        )
        self._push_weights()
        out = self._net.predict(X)
        return out.astype(np.result_type(X.dtype, out.dtype), copy=False)

    def _check_solver(self):
        """``partial_fit`` exists for the stochastic solvers only (scikit-learn's
        ``available_if``: ``hasattr(est, 'partial_fit')`` is False with lbfgs)."""
        if self.solver not in ("sgd", "adam"):
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. %s is not "
                "stochastic." % self.solver
            )
        return True

    def __setstate__(self, state):
        # estimators pickled before coefs_ became the model held the network in "network_"
        if "network_" in state and "_net" not in state:
            state = dict(state)
            state["_net"] = state.pop("network_")
        if "_synced" in state:
            # a copy of coefs_ that versions before _layer_equals kept; nothing reads it now
            state = dict(state)
            del state["_synced"]
        super().__setstate__(state)

    def __sklearn_is_fitted__(self):
        return "_net" in self.__dict__

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = False
        return tags


# --------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------
class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, trained by ferrinet (scikit-learn's parameters).

    Binary targets: one logistic (sigmoid) output trained with binary cross-entropy;
    multiclass: softmax outputs with cross-entropy; multilabel (a 2-D 0/1 indicator y): one
    logistic output per label. Labels may be any values (encoded with ``LabelBinarizer``).

    The objective, per mini-batch B (scikit-learn's; see the module docstring for how it maps
    onto ferrinet's losses and ``l2``)::

        J_B = (1/S_B) sum_k w_k * log_loss_k + alpha / (2 * S_B) * sum of squared weights

    with ``log_loss_k = -sum_i y_ki log p_ki`` (softmax) or ``-sum_i [y log p + (1-y) log(1-p)]``
    (logistic outputs), w_k the sample weight (times ``class_weight``), S_B their sum over the
    batch (the batch size without weights).

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        The width of each hidden layer; ``()`` for none.
    activation : str or list of str, default='relu'
        Hidden activation: ``'identity'`` (alias ``'linear'``), ``'logistic'`` (alias
        ``'sigmoid'``), ``'tanh'``, ``'relu'``, ``'leaky_relu'`` (slope 0.01); or a list with
        one per hidden layer (ferrinet only).
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        ``'lbfgs'``: scipy's L-BFGS-B on the full-batch objective (module docstring); no
        mini-batches, no ``partial_fit``, ``max_iter`` counts L-BFGS iterations.
    alpha : float, default=1e-4
        Strength of the L2 penalty ``alpha / (2 S_B) ||W||^2`` (weights only, not intercepts).
    batch_size : int or 'auto', default='auto'
        ``'auto'`` = ``min(200, n_samples)``; larger than n_samples: clipped, with a warning.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        SGD only (Adam ignores it), as scikit-learn: ``'invscaling'`` sets, after each epoch,
        ``lr = learning_rate_init / (t_ + 1) ** power_t`` (t_ = samples seen so far);
        ``'adaptive'`` divides lr by 5 each time the ``tol`` rule below fires (instead of
        stopping), and stops once lr <= 1e-6. Neither is one of ``ferrinet.schedules`` (they
        depend on t_ and on the stopping counter), so they are applied between epochs with
        ``NeuralNetwork.set_learning_rate``.
    learning_rate_init : float, default=1e-3
    power_t : float, default=0.5
    max_iter : int, default=200
        Epochs. Reaching it without converging warns ``ConvergenceWarning``.
    shuffle : bool, default=True
        Shuffle the samples before each epoch (scikit-learn's permutation, from random_state).
    random_state : int, RandomState or None, default=None
        Draws the initial weights, the early-stopping split, the shuffles (and the seed of the
        dropout masks), in scikit-learn's order.
    tol : float, default=1e-4
    n_iter_no_change : int or np.inf, default=10
        Stop when, for more than ``n_iter_no_change`` consecutive epochs, the training loss
        has not gone below ``best_loss_ - tol`` (or, with early stopping, the validation
        score has not gone above ``best_validation_score_ + tol``): scikit-learn's
        ``_update_no_improvement_count``.
    verbose : bool or int, default=False
        Print the loss of each epoch (and the validation score).
    warm_start : bool, default=False
        Continue from the fitted weights (a new optimizer, as scikit-learn).
    momentum : float in [0, 1), default=0.9
    nesterovs_momentum : bool, default=True
        SGD only.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified by class, except multilabel)
        and stop on its accuracy; the weights of the best epoch are restored. A
        ``validation_data`` given to ``fit`` is used instead of the split.
    validation_fraction : float in (0, 1), default=0.1
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's (see the module docstring for epsilon).
    max_fun : int, default=15000
        L-BFGS only: the most loss evaluations.
    dropout : None, float or list of float, default=None
        ferrinet only: inverted dropout per hidden layer during training (not with lbfgs).
    class_weight : None, dict or 'balanced', default=None
        ferrinet only: ``{label: weight}`` (labels left out weigh 1) or ``'balanced'`` =
        ``n_samples / (n_classes * count(label))``; multiplies the sample weights.
    dtype : {None, 'float64', 'float32'}, default=None
        What the network stores and computes in; None follows X as scikit-learn (float32 X:
        float32; lbfgs: float64).
    n_threads : int or None, default=None
        ferrinet only: the network's ``n_threads``, at most ``ferrinet.max_threads()``. None
        is the network's default: ``FERRINET_NUM_THREADS``, else ``OMP_NUM_THREADS`` (which
        joblib's loky workers set to cores / n_jobs, so ``GridSearchCV(n_jobs=...)`` does not
        oversubscribe), else the CPUs this process may use. Results are the same bits for a
        given count, and may differ in rounding between counts: pin it to reproduce a run.

    Attributes
    ----------
    classes_, loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_,
    t_, coefs_ (list of (n_in, n_out) arrays: the model, may be assigned or edited in place),
    intercepts_, n_features_in_,
    feature_names_in_, n_iter_, n_layers_, n_outputs_, out_activation_ : as scikit-learn.
    validation_loss_curve_ : list or None
        The validation loss after each epoch (no penalty; loss_curve_'s units), when there is
        a validation set.
    network_ : ferrinet.NeuralNetwork
        The fitted network (``coefs_[i]`` is ``network_.layers[i].weights.T``; edits of
        ``coefs_`` are sent to it when it is read).
    _optimizer : object
        After a fit with sgd / adam: ``learning_rate`` (scikit-learn's current value),
        ``learning_rate_init``, ``t`` (steps taken) and the solver's settings.
    """

    _estimator_is_classifier = True

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=None,
        class_weight=None,
        dtype=None,
        n_threads=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.class_weight = class_weight
        self.dtype = dtype
        self.n_threads = n_threads

    # ----- targets
    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            multi_output=True,
            dtype=(np.float64, np.float32),
            accept_sparse=["csr", "csc"],
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        return X, y, self._encode(y)

    def _encode(self, y):
        """The ferrinet targets: class indices (softmax) or 0/1 floats (logistic outputs)."""
        Y = self._label_binarizer.transform(y)
        if hasattr(Y, "toarray"):
            Y = Y.toarray()
        if self._label_binarizer.y_type_ == "multiclass":
            return np.ascontiguousarray(Y.argmax(axis=1), dtype=np.int64)
        return np.ascontiguousarray(Y, dtype=np.float64)

    def _output_spec(self, T):
        if self._label_binarizer.y_type_ == "multiclass":
            return len(self.classes_), "softmax", "cross_entropy"
        return T.shape[1], "sigmoid", "binary_cross_entropy"

    def _class_codes(self, y_labels):
        return np.searchsorted(self.classes_, y_labels)

    def _encode_validation_targets(self, yv, n, n_outputs):
        yv = np.asarray(yv)
        if yv.ndim == 2 and yv.shape[1] == 1:
            yv = yv.ravel()
        if yv.shape[0] != n:
            raise ValueError(f"validation_data: X_val has {n} samples but y_val has {yv.shape[0]}")
        unknown = np.setdiff1d(unique_labels(yv), self.classes_)
        if len(unknown):
            raise ValueError(
                f"validation_data: y_val has labels {unknown.tolist()} that the training data "
                f"do not have; classes_ = {self.classes_.tolist()}"
            )
        return yv, self._encode(yv)

    def _score_outputs(self, out, y_labels, sample_weight):
        return accuracy_score(y_labels, self._labels(out), sample_weight=sample_weight)

    def _class_weight_factors(self, y_labels, incremental):
        cw = self.class_weight
        if cw is None:
            return None
        if self._label_binarizer.y_type_.startswith("multilabel"):
            raise ValueError("class_weight is not supported for multilabel targets")
        if isinstance(cw, str):
            if cw != "balanced":
                raise ValueError(f"class_weight must be a dict, 'balanced' or None; got {cw!r}")
            if incremental:
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit (the class counts "
                    "of one batch are not those of the data); give a dict {label: weight}"
                )
            labels, codes = np.unique(y_labels, return_inverse=True)
            counts = np.bincount(codes)
            table = len(y_labels) / (len(labels) * counts)
            return table[codes].astype(np.float64)
        if not isinstance(cw, dict):
            raise TypeError(f"class_weight must be a dict, 'balanced' or None; got {cw!r}")
        factors = np.ones(len(y_labels), dtype=np.float64)
        for label, weight in cw.items():
            if label not in set(self.classes_.tolist()):
                raise ValueError(
                    f"class_weight has label {label!r}, which is not a class; classes_ = "
                    f"{self.classes_.tolist()}"
                )
            weight = _validate.real(weight, f"class_weight[{label!r}]", low=0.0)
            factors[y_labels == label] = weight
        return factors

    # ----- public API
    def fit(
        self, X: Any, y: Any, sample_weight: Any = None, validation_data: Any = None
    ) -> "MLPClassifier":
        """Fit to (X, y); returns self.

        ``sample_weight``: one weight >= 0 per sample. ``validation_data``: ``(X_val, y_val)``
        or ``(X_val, y_val, sample_weight_val)``, scored after every epoch (see the class
        docstring)."""
        return self._fit(X, y, sample_weight, incremental=False, validation_data=validation_data)

    @available_if(lambda est: est._check_solver())
    def partial_fit(
        self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None
    ) -> "MLPClassifier":
        """One epoch over (X, y), continuing the optimizer; ``classes`` (every label) is
        required on the first call, as scikit-learn."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def _labels(self, out):
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    def predict(self, X: Any) -> np.ndarray:
        """The predicted labels: argmax (multiclass), p > 0.5 (binary and each label)."""
        return self._labels(self._forward(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``; binary: ``[1 - p, p]``;
        multilabel: one probability per label."""
        out = self._forward(X)
        if self.n_outputs_ == 1:
            p = out.ravel()
            return np.vstack([1 - p, p]).T
        return out

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))``."""
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


# --------------------------------------------------------------------------------------------
# The regressor
# --------------------------------------------------------------------------------------------
class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, trained by ferrinet (scikit-learn's parameters).

    Identity outputs (one per target column; multi-output y is supported), trained with
    ferrinet's mse. The objective, per mini-batch B (scikit-learn's)::

        J_B = (1/S_B) sum_k w_k * 1/2 * sum_i (p_ki - y_ki)^2  +  alpha / (2 S_B) ||W||^2

    = ``(m/2) * [mse + l2/2 ||W||^2]`` with ferrinet's mse (mean over the m outputs) and
    ``l2 = 2 alpha / (m S_B)``. ``loss_curve_`` reports J: for one output it is scikit-learn's
    value (half the mean squared error, plus the penalty); for m > 1 outputs scikit-learn
    prints the squared error averaged over outputs instead while following the gradient of J
    (see the module docstring), so its numbers are smaller by that factor in the data term.

    Parameters are those of ``MLPClassifier`` (without ``class_weight``; with
    ``solver='lbfgs'``, the identity outputs' loss is summed over outputs for value and
    gradient alike, see the module docstring), plus ``loss``: ``'squared_error'`` (above) or
    ``'poisson'``: exp outputs p = exp(z) (a log link) and half the Poisson deviance,
    scikit-learn's::

        J_B = (1/S_B) sum_k w_k sum_i [y_ki log(y_ki / p_ki) - y_ki + p_ki] + alpha / (2 S_B) ||W||^2

    = ``m * [poisson + l2/2 ||W||^2]`` with ferrinet's loss ``poisson`` (mean over the m outputs)
    and ``l2 = alpha / (m S_B)``; targets must be >= 0 (ValueError otherwise).
    Early stopping scores by R^2 (``r2_score``), as scikit-learn.
    """

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=None,
        dtype=None,
        n_threads=None,
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.dtype = dtype
        self.n_threads = n_threads

    def _check_params(self, incremental):
        _validate.choice(self.loss, "loss", ("squared_error", "poisson"))
        return super()._check_params(incremental)

    def _check_poisson_targets(self, T, what):
        """loss='poisson' models counts or rates: a negative target is refused (scikit-learn
        documents ``y >= 0`` but does not check it, and its loss is then NaN)."""
        if self.loss == "poisson" and T.size and not T.min() >= 0.0:
            k = int(np.argmin(T.min(axis=1)))
            raise ValueError(
                f"loss='poisson' requires {what} >= 0 (counts or rates); got {T.min()!r} "
                f"(sample {k})"
            )

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            accept_sparse=["csr", "csc"],
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        T = np.asarray(y, dtype=np.float64)
        if T.ndim == 1:
            T = T.reshape(-1, 1)
        self._check_poisson_targets(T, "y")
        return X, y, T

    def _output_spec(self, T):
        if self.loss == "poisson":
            return T.shape[1], "exp", "poisson"
        return T.shape[1], "identity", "mse"

    def _encode_validation_targets(self, yv, n, n_outputs):
        yv = np.asarray(yv, dtype=np.float64)
        if yv.ndim == 1:
            Tv = yv.reshape(-1, 1)
        elif yv.ndim == 2:
            Tv = yv
        else:
            raise ValueError(f"validation_data: y_val must be 1-D or 2-D, got shape {yv.shape}")
        if Tv.shape != (n, n_outputs):
            raise ValueError(
                f"validation_data: expected y_val of shape ({n}, {n_outputs}) (or ({n},) "
                f"for one output), got {yv.shape}"
            )
        self._check_poisson_targets(Tv, "validation_data's y_val")
        return (yv.ravel() if n_outputs == 1 else yv), np.ascontiguousarray(Tv)

    def _score_outputs(self, out, y, sample_weight):
        if self.n_outputs_ == 1:
            out = out.ravel()
        return r2_score(y, out, sample_weight=sample_weight)

    def fit(
        self, X: Any, y: Any, sample_weight: Any = None, validation_data: Any = None
    ) -> "MLPRegressor":
        """Fit to (X, y); returns self. ``validation_data``: ``(X_val, y_val)`` or
        ``(X_val, y_val, sample_weight_val)``, scored (R^2) after every epoch."""
        return self._fit(X, y, sample_weight, incremental=False, validation_data=validation_data)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> "MLPRegressor":
        """One epoch over (X, y), continuing the optimizer."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: Any) -> np.ndarray:
        """The predictions, (n,) for one output, else (n, n_outputs)."""
        out = self._forward(X)
        if out.shape[1] == 1:
            return out.ravel()
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
