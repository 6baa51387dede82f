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
from typing import Callable

import numpy as np

__all__ = [
    "GradcheckEntry",
    "GradcheckReport",
    "ParityDifference",
    "ParityReport",
    "check_parity",
    "gradcheck",
]


def _as_arrays(weights) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(W, b)] per layer, as fresh float64 arrays (from lists or arrays)."""
    return [
        (np.array(W, dtype=np.float64), np.array(b, dtype=np.float64))
        for W, b in weights
    ]


# --------------------------------------------------------------------------------------------
# gradcheck
# --------------------------------------------------------------------------------------------
@dataclass
class GradcheckEntry:
    """The worst parameter of one layer's weights or biases."""

    layer: int
    param: str  # "weight" or "bias"
    max_rel_error: float
    neuron: int  # i: row of W, entry of b
    input: int | None  # j: column of W; None for a bias
    analytic: float
    numeric: float

    @property
    def where(self) -> str:
        if self.input is None:
            return f"b[{self.neuron}]"
        return f"W[{self.neuron}][{self.input}]"


@dataclass
class GradcheckReport:
    """What ``gradcheck`` found: the worst relative error per layer and parameter kind.

    ``analytic``, ``numeric`` and ``rel_errors`` hold every value, [(W-shaped, b-shaped)] per
    layer, for a closer look. ``passed()`` compares ``max_rel_error`` with ``tol``.
    """

    entries: list[GradcheckEntry]
    max_rel_error: float
    tol: float
    eps: float
    floor: float
    analytic: list = field(repr=False, default_factory=list)
    numeric: list = field(repr=False, default_factory=list)
    rel_errors: list = field(repr=False, default_factory=list)

    def passed(self, tol: float | None = None) -> bool:
        """True when every relative error is <= tol (the report's own tol by default); NaN fails."""
        tol = self.tol if tol is None else tol
        return bool(self.max_rel_error <= tol)

    @property
    def worst(self) -> GradcheckEntry | None:
        """The entry with the largest relative error (None for a network without parameters)."""
        return max(self.entries, key=lambda e: e.max_rel_error, default=None)

    def __str__(self) -> str:
        verdict = "passed" if self.passed() else "FAILED"
        lines = [
            (
                f"gradcheck {verdict}: max relative error {self.max_rel_error:.3e} "
                f"(tol {self.tol:.0e}, eps {self.eps:.0e}, floor {self.floor:.0e})"
            ),
            f"{'layer':>5}  {'param':<6}  {'max rel err':>11}  {'at':<10}  {'analytic':>13}  {'numeric':>13}",
        ]
        for e in self.entries:
            mark = "" if e.max_rel_error <= self.tol else "  <-"
            lines.append(
                f"{e.layer:>5}  {e.param:<6}  {e.max_rel_error:>11.3e}  {e.where:<10}  "
                f"{e.analytic:>13.6e}  {e.numeric:>13.6e}{mark}"
            )
        return "\n".join(lines)

    __repr__ = __str__


def gradcheck(
    net,
    X,
    Y,
    eps: float = 1e-6,
    gradients: Callable | None = None,
    floor: float = 1e-4,
    tol: float = 1e-6,
) -> GradcheckReport:
    """Compare analytic gradients with central finite differences of the loss.

    For every weight and bias p: ``numeric = (L(p + eps) - L(p - eps)) / (2 eps)``, with L the
    network's ``compute_loss(X, Y)``, evaluated on ``net.copy()`` through ``set_weights`` (the
    network given is never modified). ``analytic`` is ``gradients(net, X, Y)`` when a callable
    is given (to judge another implementation, e.g. ``reference.article_gradients``), else
    ``net.gradients(X, Y)``. Per parameter::

        rel = |analytic - numeric| / max(|analytic|, |numeric|, floor)

    Why the floor: the central difference is exact to O(eps**2) in theory, but each loss carries
    a roundoff of an ulp or a few of L (2.2e-16 per ulp for 1 <= L < 2), and dividing by
    2 eps = 2e-6 turns it into an absolute error of ~1e-10 in ``numeric``. For a gradient near
    zero a purely relative error would be that noise divided by almost nothing, so below
    ``floor`` the error is measured against ``floor``: 1e-10 / 1e-4 = 1e-6, the default ``tol``.
    That is tight: with losses of a few units the noise alone reaches ~2e-6 for gradients near
    the floor (measured: 9 of 300 random small networks at the defaults). With O(1) losses pass
    ``eps=1e-5`` (roundoff ~1e-11, truncation error ~eps**2 = 1e-10 times the third derivative)
    or a larger ``floor``.

    Kinks: relu and leaky_relu have no derivative at z = 0, where ferrinet (like PyTorch) takes
    the left one (0, or 0.01 for leaky_relu) while the central difference averages both sides. z is exactly 0 more often
    than one might think: when every unit of the layer below is dead (relu output 0) for every
    sample, the next layer's z is its bias, 0.0 at initialisation. A failure there is not a bug.

    Returns a ``GradcheckReport``; ``report.passed()`` says whether max error <= ``tol``, and
    ``print(report)`` shows the worst entry of every layer's weights and biases.
    """
    if gradients is not None:
        raw = gradients(net, X, Y)
    else:
        raw = net.gradients(X, Y)
    analytic = _as_arrays(raw)
    weights = _as_arrays(net.get_weights())
    if len(analytic) != len(weights):
        raise ValueError(
            f"gradients have {len(analytic)} layers, the network {len(weights)}"
        )
    for index, ((dW, db), (W, b)) in enumerate(zip(analytic, weights)):
        if dW.shape != W.shape or db.shape != b.shape:
            raise ValueError(
                f"layer {index}: gradients of shapes {dW.shape}, {db.shape}; weights {W.shape}, {b.shape}"
            )

    probe = net.copy()

    def loss_at() -> float:
        probe.set_weights(weights)
        return float(probe.compute_loss(X, Y))

    numeric = []
    for W, b in weights:
        pair = []
        for P in (W, b):
            N = np.empty_like(P)
            for idx in np.ndindex(P.shape):
                original = P[idx]
                P[idx] = original + eps
                loss_plus = loss_at()
                P[idx] = original - eps
                loss_minus = loss_at()
                P[idx] = original
                N[idx] = (loss_plus - loss_minus) / (2.0 * eps)
            pair.append(N)
        numeric.append(tuple(pair))

    entries, rel_errors = [], []
    overall = 0.0
    with np.errstate(all="ignore"):
        for index, ((aW, ab), (nW, nb)) in enumerate(zip(analytic, numeric)):
            rel_pair = []
            for param, A, N in (("weight", aW, nW), ("bias", ab, nb)):
                scale = np.maximum(np.maximum(np.abs(A), np.abs(N)), floor)
                rel = np.abs(A - N) / scale
                rel = np.where(np.isnan(rel), np.inf, rel)  # NaN anywhere is a failure
                rel_pair.append(rel)
                if rel.size == 0:
                    continue
                flat = int(np.argmax(rel))
                idx = np.unravel_index(flat, rel.shape)
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
                overall = max(overall, float(rel[idx]))
            rel_errors.append(tuple(rel_pair))
    return GradcheckReport(
        entries=entries,
        max_rel_error=overall,
        tol=tol,
        eps=eps,
        floor=floor,
        analytic=analytic,
        numeric=numeric,
        rel_errors=rel_errors,
    )


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
    way). ``first_failure``: the first whose relative difference exceeds ``rtol`` (None: none
    did). ``max_rel_diff``: over every step; ``max_rel_diff_after_step1``: over the loss of
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
                f"(learning rate {self.learning_rate}, rtol {self.rtol:.0e})"
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
    net, X, Y, steps: int = 100, learning_rate: float = 0.1, rtol: float = 1e-12
) -> ParityReport:
    """Train ``net`` and the pure-Python reference in lockstep and compare them after every step.

    Builds ``ferrinet.reference.NeuralNetwork`` with ``net.sizes``, ``net.activations`` and
    ``net.loss``, and gives it the same weights (``net.get_weights()``). Then, on ``net.copy()``
    (the network given is not modified) and on the reference, step s = 1..steps calls
    ``backward(x, y, learning_rate)`` with sample (s - 1) % n, and compares the two losses and
    every weight and bias. For cross_entropy, Y may be class indices.

    Relative difference: ``|a - b| / max(|a|, |b|, 1e-12)``, 0 when a == b. The 1e-12 floor
    keeps a weight that drifts through zero (1e-17 vs 3e-17, say) from reading as a 100%
    difference; above 1e-12 in magnitude the measure is purely relative. A bit difference is any
    difference of the float64 bit patterns (so 0.0 vs -0.0 counts as one, with rel diff 0).
    """
    # imported here, lazily: checks.py must load even before the package is complete
    from . import reference

    hidden, output = list(net.activations[:-1]), net.activations[-1]
    ref = reference.NeuralNetwork(
        list(net.sizes), activation=hidden, output_activation=output, loss=net.loss
    )
    ref.set_weights(
        [(np.asarray(W).tolist(), np.asarray(b).tolist()) for W, b in net.get_weights()]
    )
    trained = net.copy()
    X, targets = _parity_samples(net.loss, X, Y)
    n = X.shape[0]

    first_bits: ParityDifference | None = None
    first_fail: ParityDifference | None = None
    max_rel = 0.0
    max_rel_step1 = 0.0
    net_losses: list[float] = []
    ref_losses: list[float] = []

    def compare(step, quantity, layer, a, b, index_names):
        nonlocal first_bits, first_fail, max_rel, max_rel_step1
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(
                f"step {step}: {quantity} of layer {layer} has shape {a.shape} vs {b.shape}"
            )
        rel = _rel_diff(a, b)
        if rel.size:
            worst = float(rel.max())
            max_rel = max(max_rel, worst)
            if step == 1:
                max_rel_step1 = max(max_rel_step1, worst)

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

        if first_bits is None and _bits_differ(a, b).any():
            first_bits = difference(np.atleast_1d(_bits_differ(a, b)))
        if first_fail is None and (rel > rtol).any():
            first_fail = difference(np.atleast_1d(rel > rtol))

    def compare_weights(step):
        pairs = zip(_as_arrays(trained.get_weights()), _as_arrays(ref.get_weights()))
        for layer, ((Wn, bn), (Wr, br)) in enumerate(pairs):
            compare(step, "weight", layer, Wn, Wr, ("neuron", "input"))
            compare(step, "bias", layer, bn, br, ("neuron",))

    compare_weights(0)
    for step in range(1, steps + 1):
        k = (step - 1) % n
        y_net = targets[k]
        y_ref = y_net if isinstance(y_net, int) else y_net.tolist()
        loss_net = float(trained.backward(X[k].copy(), y_net, learning_rate))
        loss_ref = float(ref.backward(X[k].tolist(), y_ref, learning_rate))
        net_losses.append(loss_net)
        ref_losses.append(loss_ref)
        compare(step, "loss", None, loss_net, loss_ref, ())
        compare_weights(step)

    return ParityReport(
        steps=steps,
        learning_rate=learning_rate,
        rtol=rtol,
        first_bit_difference=first_bits,
        first_failure=first_fail,
        max_rel_diff=max_rel,
        max_rel_diff_after_step1=max_rel_step1,
        net_losses=net_losses,
        reference_losses=ref_losses,
    )
