"""Checks any ferrinet-style network can be put through: finite differences and parity.

``gradcheck`` compares a network's analytic gradients with central differences of its own loss.
``check_parity`` trains a network and the pure-Python reference (``ferrinet.reference``) in
lockstep and reports the first step where they stop agreeing.

Both work with any object that has the ferrinet API (``sizes``, ``activations``, ``loss``,
``compute_loss``, ``gradients``, ``backward``, ``get_weights``, ``set_weights``, ``copy``): the
Rust-backed ``ferrinet.NeuralNetwork`` (numpy arrays in and out) or ``ferrinet.reference
.NeuralNetwork`` (lists). Neither modifies the network it is given: they work on ``net.copy()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = [
    "GradcheckEntry",
    "GradcheckKink",
    "GradcheckReport",
    "ParityDifference",
    "ParityReport",
    "check_parity",
    "default_floor",
    "gradcheck",
]


def _as_arrays(weights) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(W, b)] per layer, as fresh float64 arrays (from lists or arrays)."""
    return [(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64)) for W, b in weights]


# --------------------------------------------------------------------------------------------
# gradcheck
# --------------------------------------------------------------------------------------------
# DBL_EPSILON = 2**-52: the spacing of float64 at 1.0; one ulp of a number in [1, 2).
_DBL_EPSILON = float(np.finfo(np.float64).eps)
# Roundoff budget of ONE loss evaluation, in units of DBL_EPSILON * max(1, |L|). Measured on
# 2,000 random networks of widths <= 8, depth <= 4, batch <= 4 (every activation and loss): the
# two losses of a central difference never differed from the exact ones by more than 9 such
# units together, i.e. <= 4.5 each; 16 leaves a margin of more than 3.
_ROUNDOFF_ULPS = 16.0
# The activations whose derivative jumps at z = 0; with none of them the loss is smooth.
_KINK_ACTIVATIONS = frozenset({"relu", "leaky_relu"})
# The wider stencil of the kink test: L(p +- 4 eps).
_KINK_STEP = 4.0


@dataclass
class GradcheckEntry:
    """The worst parameter of one layer's weights or biases (parameters at a kink left out)."""

    layer: int
    param: str  # "weight" or "bias"
    max_rel_error: float
    neuron: int  # i: row of W, entry of b
    input: int | None  # j: column of W; None for a bias
    analytic: float
    numeric: float

    @property
    def where(self) -> str:
        return _where(self.neuron, self.input)


@dataclass
class GradcheckKink:
    """A parameter where the loss has a kink: it is not differentiable there, so its central
    difference means nothing and is left out of ``max_rel_error``.

    ``left`` and ``right`` are the one-sided slopes ``(L(p) - L(p - eps)) / eps`` and
    ``(L(p + eps) - L(p)) / eps``; the analytic gradient lies between them (within ``tol``),
    else the parameter would not have been excused. ``rel_error`` is the relative error against
    the central difference that was NOT counted.
    """

    layer: int
    param: str  # "weight" or "bias"
    neuron: int
    input: int | None
    analytic: float
    numeric: float  # the central difference
    left: float
    right: float
    rel_error: float

    @property
    def where(self) -> str:
        return _where(self.neuron, self.input)


def _where(neuron: int, input: int | None) -> str:
    return f"b[{neuron}]" if input is None else f"W[{neuron}][{input}]"


@dataclass
class GradcheckReport:
    """What ``gradcheck`` found: the worst relative error per layer and parameter kind.

    ``analytic``, ``numeric`` and ``rel_errors`` hold every value, [(W-shaped, b-shaped)] per
    layer, for a closer look (``rel_errors`` includes the parameters at a kink; ``at_kink`` marks
    them). ``passed()`` compares ``max_rel_error`` with ``tol``. ``floor`` is the floor that was
    used (derived from ``loss`` unless one was given); ``kinks`` lists the parameters at a kink,
    which ``entries`` and ``max_rel_error`` leave out (``kinks_checked``: whether the kink test
    ran at all).
    """

    entries: list[GradcheckEntry]
    max_rel_error: float
    tol: float
    eps: float
    floor: float
    analytic: list = field(repr=False, default_factory=list)
    numeric: list = field(repr=False, default_factory=list)
    rel_errors: list = field(repr=False, default_factory=list)
    loss: float = float("nan")
    kinks: list[GradcheckKink] = field(default_factory=list)
    kinks_checked: bool = False
    at_kink: list = field(repr=False, default_factory=list)

    def passed(self, tol: float | None = None) -> bool:
        """True when every relative error is <= tol (the report's own tol by default); NaN fails.

        Parameters at a kink are not counted (see ``kinks``); the floor stays the one the report
        was computed with."""
        tol = self.tol if tol is None else tol
        return bool(self.max_rel_error <= tol)

    @property
    def n_kinks(self) -> int:
        return len(self.kinks)

    @property
    def worst(self) -> GradcheckEntry | None:
        """The entry with the largest relative error (None for a network without parameters)."""
        return max(self.entries, key=lambda e: e.max_rel_error, default=None)

    def __str__(self) -> str:
        verdict = "passed" if self.passed() else "FAILED"
        head = (
            f"gradcheck {verdict}: max relative error {self.max_rel_error:.3e} "
            f"(tol {self.tol:.0e}, eps {self.eps:.0e}, floor {self.floor:.2e}, "
            f"loss {self.loss:.6g})"
        )
        if self.kinks:
            head += f"; {self.n_kinks} parameter(s) at a kink, not counted"
        lines = [
            head,
            f"{'layer':>5}  {'param':<6}  {'max rel err':>11}  {'at':<10}  {'analytic':>13}  {'numeric':>13}",
        ]
        for e in self.entries:
            mark = "" if e.max_rel_error <= self.tol else "  <-"
            lines.append(
                f"{e.layer:>5}  {e.param:<6}  {e.max_rel_error:>11.3e}  {e.where:<10}  "
                f"{e.analytic:>13.6e}  {e.numeric:>13.6e}{mark}"
            )
        if self.kinks:
            shown = 10
            lines.append(
                f"{self.n_kinks} parameter(s) at a kink (a relu/leaky_relu pre-activation within "
                f"{_KINK_STEP:g} eps of 0): not differentiable, central difference not counted"
            )
            lines.append(
                f"{'layer':>5}  {'param':<6}  {'at':<10}  {'analytic':>13}  {'left slope':>13}  "
                f"{'right slope':>13}  {'rel err':>9}"
            )
            for k in self.kinks[:shown]:
                lines.append(
                    f"{k.layer:>5}  {k.param:<6}  {k.where:<10}  {k.analytic:>13.6e}  "
                    f"{k.left:>13.6e}  {k.right:>13.6e}  {k.rel_error:>9.2e}"
                )
            if self.n_kinks > shown:
                lines.append(f"  ... and {self.n_kinks - shown} more (report.kinks)")
        return "\n".join(lines)

    __repr__ = __str__


def default_floor(loss: float, eps: float = 1e-6, tol: float = 1e-6) -> float:
    """The floor ``gradcheck`` uses when none is given:
    ``16 * DBL_EPSILON * max(1, |loss|) / (eps * tol)`` (3.55e-3 * max(1, |L|) at the defaults).
    A non-finite loss gives the floor of |L| = 1 (the NaN or inf differences fail anyway)."""
    scale = max(1.0, abs(loss)) if np.isfinite(loss) else 1.0
    return _ROUNDOFF_ULPS * _DBL_EPSILON * scale / (eps * tol)


def gradcheck(
    net: Any,
    X: Any,
    Y: Any,
    eps: float = 1e-6,
    gradients: Callable | None = None,
    floor: float | None = None,
    tol: float = 1e-6,
    *,
    detect_kinks: bool | None = None,
) -> GradcheckReport:
    """Compare analytic gradients with central finite differences of the loss.

    For every weight and bias p: ``numeric = (L(p + eps) - L(p - eps)) / (2 eps)``, with L the
    network's ``compute_loss(X, Y)``, evaluated on ``net.copy()`` through ``set_weights`` (the
    network given is never modified). ``analytic`` is ``gradients(net, X, Y)`` when a callable
    is given (to judge another implementation, e.g. ``reference.article_gradients``), else
    ``net.gradients(X, Y)``. Per parameter::

        rel = |analytic - numeric| / max(|analytic|, |numeric|, floor)

    The floor (default: scaled with the loss). The central difference is exact to
    eps**2 / 6 * L''' (~2e-13 * L''' at eps = 1e-6: nothing), but each loss carries a rounding
    error, and the difference divides it by 2 eps. That error is a few ulps of the magnitude of
    the terms summed into L, which is max(1, |L|): |L| when the loss is large, O(1) when it is
    small but made of O(1) terms that cancel (cross-entropy of a confident prediction is
    ``lse - z`` with both ~5; measured: the noise stays ~1e-9 even at L = 1e-9). Writing
    S = max(1, |L|) and allowing each loss 16 * DBL_EPSILON * S (16 ulps; on 2,600 random small
    networks the two losses of a difference were never off by more than 9 ulps together)::

        |numeric - exact| <= 2 * 16 * 2.2e-16 * S / (2 eps)     = 3.55e-9 * S   at eps = 1e-6

    and for that to be a relative error <= tol, gradients smaller than it / tol are measured
    against a floor of that size::

        floor = 16 * DBL_EPSILON * S / (eps * tol)              = 3.55e-3 * S   at the defaults

    (``default_floor``). The old fixed floor of 1e-4 failed about 300 of 2,000 random networks
    (losses of a few units: noise ~1e-9, 1e-5 against the floor) and about 230 of 600 with
    confident cross-entropy predictions (L down to 4e-10); this one fails none of them (the
    counts are from two versions of the Rust core, before and after its fast kernels), while a
    1% error still fails any gradient larger than 1e-4 * floor = 3.6e-7 * S. The floor grows
    as tol or eps shrink, because the noise does not shrink with them: pass ``floor`` to choose
    yourself.
    For much larger networks (more roundoff) pass eps=1e-5, which cuts the noise by 10.

    Kinks. relu and leaky_relu have no derivative at z = 0, where ferrinet (like PyTorch) takes
    the left one (0, or 0.01 for leaky_relu) while the central difference averages both sides,
    so there it compares the analytic value with a number that means nothing. z is exactly 0
    more often than one might think: when every unit of a layer is dead (relu output 0) for a
    sample, the next layer's z is its bias, 0.0 at initialisation. So, when ``detect_kinks`` is
    on (by default: when one of ``net.activations`` is relu or leaky_relu), every parameter also
    gets L(p +- 4 eps), and is "at a kink" when both of these hold:

    1. The one-sided slopes ``left = (L(p) - L(p - eps)) / eps`` and
       ``right = (L(p + eps) - L(p)) / eps`` disagree by more than smooth curvature allows.
       For a smooth loss ``right - left = eps * L''``, and the quadratic through L(p - eps),
       L(p), L(p + eps) predicts L(p +- 4 eps) up to the cubic term (~1e-17 * L''', nothing).
       Its miss, ``L(p + 4e) + 15 L(p) - 10 L(p + e) - 6 L(p - e)`` (and the mirror image), is
       0 for a quadratic, and its rounding is at most (1 + 15 + 10 + 6) * 16 ulps of S =
       512 * DBL_EPSILON * S; a larger miss means a kink. A jump J of the slope at p misses by
       6 J eps (found when J > 2e-8 * S); a jump c of the curvature (a relu feeding a zero
       gradient, L ~ relu(z)**2) by 3 c eps**2 (found when c > 0.04 * S).
    2. The analytic value lies between ``left`` and ``right``, within tol * max(|analytic|,
       |numeric|, floor) plus the slopes' own curvature error (a third of how much each
       changes from eps to 4 eps): it is a one-sided derivative, as it should be at a kink. A
       value outside the slopes is never excused; it is counted, and fails.

    Parameters at a kink are listed in ``report.kinks`` (where, analytic, both slopes, the
    relative error not counted) and left out of ``entries`` and ``max_rel_error``; the first
    line of ``str(report)`` says how many. At a kink the check is weaker: any value between
    the slopes passes (a subgradient; PyTorch's convention is one end). Measured on 2,000
    random networks (every activation and loss, depth <= 4, widths <= 8, batch <= 4): with
    zero biases, 100 networks have 754 parameters at kinks; without the kink test 96 networks
    fail (about 350 with the old fixed floor too), with it none. With random biases: no kinks. With
    ``detect_kinks=True`` forced on the networks without relu: no kinks either. The test costs
    two more losses per parameter.

    Returns a ``GradcheckReport``; ``report.passed()`` says whether max error <= ``tol``, and
    ``print(report)`` shows the worst entry of every layer's weights and biases and the kinks.
    """
    # ---- plan: check everything (the network is never modified)
    if not (eps > 0.0 and np.isfinite(eps)):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    if not tol > 0.0:
        raise ValueError(f"tol must be positive, got {tol!r}")
    if floor is not None and not floor >= 0.0:
        raise ValueError(f"floor must be >= 0 or None, got {floor!r}")
    analytic, weights = _analytic_and_weights(net, X, Y, gradients)
    if detect_kinks is None:
        detect_kinks = any(name in _KINK_ACTIVATIONS for name in net.activations)

    # ---- measure: the loss at the weights, then around every parameter
    probe = net.copy()

    def loss_at() -> float:
        probe.set_weights(weights)
        return float(probe.compute_loss(X, Y))

    loss = loss_at()  # at the unchanged weights
    if floor is None:
        floor = default_floor(loss, eps, tol)
    differences = _finite_differences(weights, loss_at, loss, eps, detect_kinks)

    # ---- compare, and report
    entries, rel_errors, at_kink, kinks = _compare_gradients(analytic, differences, floor, tol)
    return GradcheckReport(
        entries=entries,
        max_rel_error=max((entry.max_rel_error for entry in entries), default=0.0),
        tol=tol,
        eps=eps,
        floor=floor,
        analytic=analytic,
        numeric=differences[0],
        rel_errors=rel_errors,
        loss=loss,
        kinks=kinks,
        kinks_checked=bool(detect_kinks),
        at_kink=at_kink,
    )


def _analytic_and_weights(net, X, Y, gradients):
    """gradcheck's analytic gradients (of ``gradients`` or the network) and the network's
    weights, as float64 arrays; ValueError when their layers or shapes differ."""
    if gradients is not None:
        raw = gradients(net, X, Y)
    else:
        raw = net.gradients(X, Y)
    analytic = _as_arrays(raw)
    weights = _as_arrays(net.get_weights())
    if len(analytic) != len(weights):
        raise ValueError(f"gradients have {len(analytic)} layers, the network {len(weights)}")
    for index, ((dW, db), (W, b)) in enumerate(zip(analytic, weights)):
        if dW.shape != W.shape or db.shape != b.shape:
            raise ValueError(
                f"layer {index}: gradients of shapes {dW.shape}, {db.shape}; weights {W.shape}, {b.shape}"
            )
    return analytic, weights


def _finite_differences(weights, loss_at, loss, eps, detect_kinks):
    """Per parameter: the central difference, the one-sided slopes, whether the loss is smooth
    there, and how much the one-sided slopes change between eps and 4 eps (their curvature).
    -> five lists (numeric, lefts, rights, rough, bends), each with one (W, b) pair per layer.
    ``weights`` are changed in place one entry at a time and set back."""
    # the roundoff budget of the smoothness test, r in gradcheck's doc (512 ulps of S)
    scale = max(1.0, abs(loss)) if np.isfinite(loss) else 1.0
    smooth_budget = 32.0 * _ROUNDOFF_ULPS * _DBL_EPSILON * scale
    tables: tuple[list[tuple[np.ndarray, ...]], ...] = ([], [], [], [], [])
    for W, b in weights:
        pairs: tuple[list[np.ndarray], ...] = ([], [], [], [], [])
        for P in (W, b):
            N, left, right, bend = (np.zeros_like(P) for _ in range(4))
            not_smooth = np.zeros(P.shape, dtype=bool)
            for idx in np.ndindex(P.shape):
                N[idx], left[idx], right[idx], not_smooth[idx], bend[idx] = _around(
                    P, idx, loss_at, loss, eps, detect_kinks, smooth_budget
                )
            for column, array in zip(pairs, (N, left, right, not_smooth, bend)):
                column.append(array)
        for table, column in zip(tables, pairs):
            table.append(tuple(column))
    return tables


def _around(P, idx, loss_at, loss, eps, detect_kinks, smooth_budget):
    """The losses around parameter ``P[idx]`` -> (central difference, left slope, right slope,
    not smooth, bend); ``P[idx]`` is set back."""
    original = P[idx]
    P[idx] = original + eps
    loss_plus = loss_at()
    P[idx] = original - eps
    loss_minus = loss_at()
    numeric = (loss_plus - loss_minus) / (2.0 * eps)
    left = (loss - loss_minus) / eps
    right = (loss_plus - loss) / eps
    not_smooth, bend = False, 0.0
    if detect_kinks:
        P[idx] = original + _KINK_STEP * eps
        loss_plus4 = loss_at()
        P[idx] = original - _KINK_STEP * eps
        loss_minus4 = loss_at()
        miss = max(
            abs(loss_plus4 + 15.0 * loss - 10.0 * loss_plus - 6.0 * loss_minus),
            abs(loss_minus4 + 15.0 * loss - 10.0 * loss_minus - 6.0 * loss_plus),
        )
        not_smooth = miss > smooth_budget
        # slope(h) = slope(0) +- h L''/2: the error of the slope at eps is a third of its
        # change from eps to 4 eps
        left4 = (loss - loss_minus4) / (_KINK_STEP * eps)
        right4 = (loss_plus4 - loss) / (_KINK_STEP * eps)
        bend = max(abs(left4 - left), abs(right4 - right)) / (_KINK_STEP - 1.0)
    P[idx] = original
    return numeric, left, right, not_smooth, bend


def _compare_gradients(analytic, differences, floor, tol):
    """The relative error of every parameter and its kinks -> (entries: the worst counted
    entry of each layer's weights and biases, rel_errors, at_kink, kinks)."""
    numeric, lefts, rights, rough, bends = differences
    entries, rel_errors, at_kink, kinks = [], [], [], []
    with np.errstate(all="ignore"):
        for index in range(len(analytic)):
            rel_pair, kink_pair = [], []
            for k, param in enumerate(("weight", "bias")):
                A, N = analytic[index][k], numeric[index][k]
                slope_left, slope_right = lefts[index][k], rights[index][k]
                scale_p = np.maximum(np.maximum(np.abs(A), np.abs(N)), floor)
                rel = np.abs(A - N) / scale_p
                rel = np.where(np.isnan(rel), np.inf, rel)  # NaN anywhere is a failure
                # a kink: not smooth, and the analytic value lies between the one-sided slopes,
                # within tol and the slopes' own curvature error
                slack = tol * scale_p + bends[index][k]
                low = np.minimum(slope_left, slope_right) - slack
                high = np.maximum(slope_left, slope_right) + slack
                kink = rough[index][k] & (A >= low) & (A <= high)
                rel_pair.append(rel)
                kink_pair.append(kink)
                for idx in zip(*np.nonzero(kink)):
                    kinks.append(
                        GradcheckKink(
                            layer=index,
                            param=param,
                            neuron=int(idx[0]),
                            input=int(idx[1]) if param == "weight" else None,
                            analytic=float(A[idx]),
                            numeric=float(N[idx]),
                            left=float(slope_left[idx]),
                            right=float(slope_right[idx]),
                            rel_error=float(rel[idx]),
                        )
                    )
                counted = np.where(kink, -1.0, rel)
                if counted.size == 0 or kink.all():
                    continue
                idx = np.unravel_index(int(np.argmax(counted)), counted.shape)
                entries.append(
                    GradcheckEntry(
                        layer=index,
                        param=param,
                        max_rel_error=float(rel[idx]),
                        neuron=int(idx[0]),
                        input=int(idx[1]) if param == "weight" else None,
                        analytic=float(A[idx]),
                        numeric=float(N[idx]),
                    )
                )
            rel_errors.append(tuple(rel_pair))
            at_kink.append(tuple(kink_pair))
    return entries, rel_errors, at_kink, kinks


# --------------------------------------------------------------------------------------------
# check_parity
# --------------------------------------------------------------------------------------------
_REL_FLOOR = 1e-12


def _rel_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| / max(|a|, |b|, 1e-12), elementwise; 0 where a == b (also both inf or both NaN),
    inf where exactly one is NaN."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(all="ignore"):
        rel = np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), _REL_FLOOR)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    rel = np.where(same, 0.0, rel)
    return np.where(np.isnan(rel), np.inf, rel)


def _bits_differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    return a.view(np.uint64) != b.view(np.uint64)


@dataclass
class ParityDifference:
    """One compared number: the loss of a step, or a weight or bias after it."""

    step: int  # 1-based; 0 is the comparison of the starting weights
    quantity: str  # "loss", "weight" or "bias"
    layer: int | None
    neuron: int | None
    input: int | None
    net_value: float
    reference_value: float
    rel_diff: float

    def __str__(self) -> str:
        if self.quantity == "loss":
            where = "loss"
        elif self.quantity == "bias":
            where = f"layer {self.layer} b[{self.neuron}]"
        else:
            where = f"layer {self.layer} W[{self.neuron}][{self.input}]"
        return (
            f"step {self.step}, {where}: net {self.net_value!r} vs reference {self.reference_value!r} "
            f"(rel diff {self.rel_diff:.3e})"
        )


@dataclass
class ParityReport:
    """What ``check_parity`` found.

    ``first_bit_difference``: the first number whose bits differ (None: bit-identical all the
    way). ``first_failure``: the first whose relative difference exceeds its tolerance:
    ``rtol_first_step`` up to the end of step 1, ``rtol`` after (None: none did). ``max_rel_diff``: over every step; ``max_rel_diff_after_step1``: over the loss of
    step 1 and the weights after it, i.e. the error of one step before any drift accumulates.
    Within a step numbers are compared in this order: the loss, then layer by layer W
    (row-major) and b. Step 0 compares the starting weights.
    """

    steps: int
    learning_rate: float
    rtol: float
    first_bit_difference: ParityDifference | None
    first_failure: ParityDifference | None
    max_rel_diff: float
    max_rel_diff_after_step1: float
    rtol_first_step: float = 1e-12
    net_losses: list[float] = field(repr=False, default_factory=list)
    reference_losses: list[float] = field(repr=False, default_factory=list)

    @property
    def bit_identical(self) -> bool:
        return self.first_bit_difference is None

    def passed(self) -> bool:
        return self.first_failure is None

    def __str__(self) -> str:
        verdict = "passed" if self.passed() else "FAILED"
        lines = [
            (
                f"parity {verdict} over {self.steps} SGD steps "
                f"(learning rate {self.learning_rate}, rtol {self.rtol_first_step:.0e} "
                f"up to step 1, {self.rtol:.0e} after)"
            ),
            f"  bit-identical:           {'yes' if self.bit_identical else 'no'}",
            f"  first bit difference:    {self.first_bit_difference or '-'}",
            f"  first failure:           {self.first_failure or '-'}",
            f"  max rel diff after step 1: {self.max_rel_diff_after_step1:.3e}",
            f"  max rel diff overall:      {self.max_rel_diff:.3e}",
        ]
        return "\n".join(lines)

    __repr__ = __str__


def _parity_samples(loss: str, X, Y):
    """X as (n, n_in) float64 and the per-sample targets to pass to ``backward``:
    an int (cross_entropy class index) or a 1-D float64 row."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y)
    if X.ndim == 1:  # one sample
        X = X[None, :]
        Y = Y[None] if (loss == "cross_entropy" and Y.ndim == 0) else Y.reshape(1, -1)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"expected a batch of shape (n, n_in), got shape {X.shape}")
    n = X.shape[0]
    targets: list[int] | list[np.ndarray]
    if loss == "cross_entropy" and Y.ndim == 1 and Y.dtype.kind in "iu":
        targets = [int(v) for v in Y]
    else:
        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim == 1:
            Y = Y[:, None]  # a column: one output
        targets = [np.ascontiguousarray(row) for row in Y]
    if len(targets) != n:
        raise ValueError(f"X has {n} samples, Y has {len(targets)}")
    return X, targets


def check_parity(
    net: Any,
    X: Any,
    Y: Any,
    steps: int = 100,
    learning_rate: float = 0.1,
    rtol: float = 1e-9,
    rtol_first_step: float = 1e-12,
) -> ParityReport:
    """Train ``net`` and the pure-Python reference in lockstep and compare them after every step.

    Builds ``ferrinet.reference.NeuralNetwork`` with ``net.sizes``, ``net.activations`` and
    ``net.loss``, and gives it the same weights (``net.get_weights()``). Then, on ``net.copy()``
    (the network given is not modified) and on the reference, step s = 1..steps calls
    ``backward(x, y, learning_rate)`` with sample (s - 1) % n, and compares the two losses and
    every weight and bias. For cross_entropy, Y may be class indices.

    Tolerances: ``rtol_first_step`` for the starting weights, the first loss and the weights
    after step 1 (one step's rounding: the Rust kernels sum in 8 FMA lanes, the reference left
    to right, so they differ by a few ulps); ``rtol`` for every later step, where those ulps may
    grow through the training dynamics (the issue's 1e-12 after one step, 1e-9 after 1,000).

    Relative difference: ``|a - b| / max(|a|, |b|, 1e-12)``, 0 when a == b. The 1e-12 floor
    keeps a weight that drifts through zero (1e-17 vs 3e-17, say) from reading as a 100%
    difference; above 1e-12 in magnitude the measure is purely relative. A bit difference is any
    difference of the float64 bit patterns (so 0.0 vs -0.0 counts as one, with rel diff 0).
    """
    # ---- plan: the reference with the same weights, the samples (the network is not modified)
    ref = _reference_twin(net)
    trained = net.copy()
    X, targets = _parity_samples(net.loss, X, Y)
    n = X.shape[0]

    # ---- the steps, compared one by one
    tracker = _ParityTracker(rtol, rtol_first_step)
    tracker.compare_weights(0, trained, ref)
    net_losses: list[float] = []
    ref_losses: list[float] = []
    for step in range(1, steps + 1):
        k = (step - 1) % n
        y_net = targets[k]
        y_ref = y_net if isinstance(y_net, int) else y_net.tolist()
        loss_net = float(trained.backward(X[k].copy(), y_net, learning_rate))
        loss_ref = float(ref.backward(X[k].tolist(), y_ref, learning_rate))
        net_losses.append(loss_net)
        ref_losses.append(loss_ref)
        tracker.compare(step, "loss", None, loss_net, loss_ref, ())
        tracker.compare_weights(step, trained, ref)

    # ---- report
    return ParityReport(
        steps=steps,
        learning_rate=learning_rate,
        rtol=rtol,
        rtol_first_step=rtol_first_step,
        first_bit_difference=tracker.first_bits,
        first_failure=tracker.first_fail,
        max_rel_diff=tracker.max_rel,
        max_rel_diff_after_step1=tracker.max_rel_step1,
        net_losses=net_losses,
        reference_losses=ref_losses,
    )


def _reference_twin(net):
    """``ferrinet.reference.NeuralNetwork`` with the sizes, activations, loss and weights of
    ``net``."""
    # imported here, lazily: checks.py must load even before the package is complete
    from . import reference

    hidden, output = list(net.activations[:-1]), net.activations[-1]
    ref = reference.NeuralNetwork(
        list(net.sizes), activation=hidden, output_activation=output, loss=net.loss
    )
    ref.set_weights(
        [(np.asarray(W).tolist(), np.asarray(b).tolist()) for W, b in net.get_weights()]
    )
    return ref


class _ParityTracker:
    """check_parity's running comparison: the first bit difference, the first difference over
    the tolerance of its step, the largest relative differences (overall and at step 1)."""

    def __init__(self, rtol: float, rtol_first_step: float):
        self.rtol = rtol
        self.rtol_first_step = rtol_first_step
        self.first_bits: ParityDifference | None = None
        self.first_fail: ParityDifference | None = None
        self.max_rel = 0.0
        self.max_rel_step1 = 0.0

    def compare_weights(self, step, trained, ref):
        pairs = zip(_as_arrays(trained.get_weights()), _as_arrays(ref.get_weights()))
        for layer, ((Wn, bn), (Wr, br)) in enumerate(pairs):
            self.compare(step, "weight", layer, Wn, Wr, ("neuron", "input"))
            self.compare(step, "bias", layer, bn, br, ("neuron",))

    def compare(self, step, quantity, layer, a, b, index_names):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(
                f"step {step}: {quantity} of layer {layer} has shape {a.shape} vs {b.shape}"
            )
        rel = _rel_diff(a, b)
        if rel.size:
            worst = float(rel.max())
            self.max_rel = max(self.max_rel, worst)
            if step == 1:
                self.max_rel_step1 = max(self.max_rel_step1, worst)

        def difference(mask):
            flat = int(np.flatnonzero(mask.ravel())[0])
            idx = np.unravel_index(flat, a.shape) if a.shape else ()
            where = dict(zip(index_names, (int(i) for i in idx)))
            return ParityDifference(
                step=step,
                quantity=quantity,
                layer=layer,
                neuron=where.get("neuron"),
                input=where.get("input"),
                net_value=float(a[idx]),
                reference_value=float(b[idx]),
                rel_diff=float(rel[idx]),
            )

        if self.first_bits is None and _bits_differ(a, b).any():
            self.first_bits = difference(np.atleast_1d(_bits_differ(a, b)))
        tol = self.rtol_first_step if step <= 1 else self.rtol
        if self.first_fail is None and (rel > tol).any():
            self.first_fail = difference(np.atleast_1d(rel > tol))
