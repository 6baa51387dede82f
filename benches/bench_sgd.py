#!/usr/bin/env python3
"""Per-sample SGD: ferrinet against a Python loop, NumPy, the pure-Python reference and C.

Run with ``make bench`` (or ``python benches/bench_sgd.py [--quick]`` after a release build).

Five cases, relu hidden layers, trained one sample at a time (the article's loop):

    2-8-1               float64  mse            the article's XOR-sized network
    2-8-1 float32       float32  mse            the same in float32
    1-32-32-1           float64  mse            a small regression network
    784-128-10          float64  cross_entropy  an MNIST-sized classifier (softmax output)
    784-128-10 float32  float32  cross_entropy  the same classifier in float32 (the speed issue's
                                                float32 per-sample target)

on synthetic, seeded data, by six implementations of the same maths (docs/maths.md):

    (a) ferrinet  ``net.train(X, Y, epochs, lr)``: the whole loop in Rust
    (b) ferrinet  ``net.backward(x, y, lr)`` called from a Python ``for`` loop over the samples
                  as a list of (x, y) rows split beforehand (``for x, y in rows``): the cost of
                  the call itself, which the ``backward`` targets judge
    (b') ferrinet the same loop indexing ``X[k], Y[k]`` inside it: (b) plus NumPy's indexing
                  (~0.2 µs per sample; shown for information, not judged)
    (c) numpy     a straightforward per-sample SGD in NumPy (matrix-vector products and outer
                  products per layer), written below
    (c') numpy    the same operations into buffers allocated once (``out=``, in-place updates):
                  same arithmetic, no weight-sized temporaries (see ``NumpyMLP``)
    (d) reference ``ferrinet.reference``, pure Python lists; timed on a few steps and
                  reported per step. It computes in float64 only, so the float32 case skips it
                  (in the answer check and in the timing)
    (e) yardstick ``yardstick.c``: a plain per-sample SGD loop in C (fused backward + update,
                  one pass over each W per sample), built with gcc -O3 -march=native -ffast-math
                  and called through ctypes on the same NumPy arrays (``yardstick.py``)
    (f) ferrinet  ``net.gradients(x, y)`` per call from a Python loop (no update)

The float32 case hands ferrinet and NumPy float32 data (X cast once, class targets int64), so
ferrinet reads it without a copy and NumPy computes in float32 throughout.

Before anything is timed the answers are checked: from the same starting weights, after the
same steps, (b), (c), (c') and (d) must end with ferrinet's weights (and epoch losses) to within
1e-9 relative in float64 (RTOL), 1e-5 in float32 (RTOL_F32); the script stops with exit status 1
if they do not. None is expected to agree bit for bit: ferrinet sums dot products over 8
interleaved lanes, takes a large first layer's steps in blocks of 32 samples
(rust/ferrinet-core/src/per_sample/sgd_block.rs), and NumPy's BLAS sums in its own order, so a few ulps of
difference are expected.

Timing: ``time.perf_counter`` around one run of S steps, starting from the same weights every
time (setting the weights is not timed); S is chosen so that one run takes about ``--seconds``
(at least one step); after one untimed warm-up run per row, ``--repeats`` rounds (7), each
timing every row once, give the median, min and max of microseconds per step. The ratio column
is (median of the row) / (median of (a)).

Targets (issue #15), judged against the C yardstick timed in the same round: ``train`` per sample
/ yardstick <= 1.1 (2-8-1 and 784-128-10, both dtypes); ``backward`` per call, 784-128-10,
<= 1.1 x yardstick + 1 µs; ``backward`` per call, 2-8-1, <= 0.5 µs. Verdict: the median over the
rounds of the per-round value meets the target (with >= 7 rounds); the rounds that met it on
their own are counted beside it.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import ferrinet
import numpy as np
from ferrinet import reference

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from matmul_rate import matmul_gflops  # noqa: E402
from yardstick import FLAGS as YARDSTICK_FLAGS  # noqa: E402
from yardstick import Yardstick, YardstickUnavailable  # noqa: E402
from yardstick import build as build_yardstick  # noqa: E402

YARDSTICK_LIBS: dict = {}  # {dtype: ctypes library}, built by main()

RTOL = 1e-9  # the agreement the answer check demands in float64
# ... and in float32: the implementations sum in different orders (8 lanes, blocks of 32 steps,
# BLAS), each rounding at float32's 6e-8, and 64 steps compound it; measured max rel diff on
# the 64-step check 6-7e-7 (5 seeds; 1.3-2.1e-6 after 640 steps), per compare; 1e-5 is
# ~15x the 64-step figure and 4 orders below a wrong gradient (1e-1..1e0).
RTOL_F32 = 1e-5

Weights = List[Tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------------------------
# The networks and their data
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    name: str
    sizes: List[int]
    loss: str
    learning_rate: float
    n_samples: int  # the data set is one epoch; longer runs cycle through it
    dtype: str = "float64"  # what ferrinet and NumPy compute in; the data is cast to it

    def data(self, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        """Seeded synthetic data: X (n, n_in) in the case's dtype (drawn in float64, then cast,
        so both dtypes see the same samples); Y (n, 1) in the case's dtype for mse, class
        indices (n,) int64 for cross_entropy."""
        rng = np.random.default_rng(seed)
        n, n_in = self.n_samples, self.sizes[0]
        if self.loss == "cross_entropy":
            X = rng.uniform(0.0, 1.0, (n, n_in))  # pixel-like intensities
            Y = rng.integers(0, self.sizes[-1], n)
        elif n_in == 1:
            X = rng.uniform(-np.pi, np.pi, (n, 1))
            Y = np.sin(X) + 0.1 * rng.standard_normal((n, 1))
        else:
            X = rng.uniform(-1.0, 1.0, (n, n_in))
            Y = np.sin(3.0 * X[:, :1]) * X[:, 1:2]
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if Y.dtype.kind == "f":
            Y = np.ascontiguousarray(Y, dtype=self.dtype)
        return X, Y

    def network(self) -> ferrinet.NeuralNetwork:
        return ferrinet.NeuralNetwork(
            self.sizes, activation="relu", loss=self.loss, seed=0, dtype=self.dtype
        )

    @property
    def network_name(self) -> str:
        return "-".join(map(str, self.sizes))

    @property
    def rtol(self) -> float:
        """The answer check's tolerance for this dtype."""
        return RTOL if self.dtype == "float64" else RTOL_F32

    @property
    def n_parameters(self) -> int:
        return sum((a + 1) * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))


CASES = [
    Case("2-8-1", [2, 8, 1], "mse", 0.05, 256),
    Case("2-8-1 float32", [2, 8, 1], "mse", 0.05, 256, dtype="float32"),
    Case("1-32-32-1", [1, 32, 32, 1], "mse", 0.005, 256),
    Case("784-128-10", [784, 128, 10], "cross_entropy", 0.01, 64),
    Case("784-128-10 float32", [784, 128, 10], "cross_entropy", 0.01, 64, dtype="float32"),
]


# --------------------------------------------------------------------------------------------
# (c) per-sample SGD in NumPy, the maths of docs/maths.md with n = 1
# --------------------------------------------------------------------------------------------
class NumpyMLP:
    """relu hidden layers; identity output with mse, softmax output with cross_entropy.

    ``preallocated=False``: the straightforward version, ``W -= lr * np.outer(delta, x)``, which
    allocates two weight-sized temporaries per layer per step. ``preallocated=True``: the same
    operations into buffers allocated once (``out=``, in-place updates), bit for bit the same
    result. The difference is the memory allocator: for 784-128-10 each temporary is 800 kB,
    glibc serves it from fresh pages (mmap, or heap trimmed at every free) and the page faults
    can cost more than the arithmetic.

    ``dtype``: what every array is computed in (float64 or float32); x and float targets must
    come in that dtype. Python float scalars (lr, 0.0, 1.0) do not upcast float32 arrays
    (NumPy >= 2 casting rules), so a float32 step stays float32 throughout.
    """

    def __init__(self, weights: Weights, loss: str, preallocated: bool = False, dtype="float64"):
        self.W = [np.array(W, dtype=dtype) for W, _ in weights]
        self.b = [np.array(b, dtype=dtype) for _, b in weights]
        self.loss = loss
        self.preallocated = preallocated
        if preallocated:
            self.z = [np.empty(len(b), dtype=dtype) for b in self.b]
            self.a = [np.empty(len(b), dtype=dtype) for b in self.b]
            self.dW = [np.empty_like(W) for W in self.W]

    def step(self, x: np.ndarray, t, lr: float) -> float:
        """One SGD step on one sample; returns the loss before the step."""
        W, b = self.W, self.b
        last = len(W) - 1
        pre = self.preallocated
        # forward, caching every layer's input and pre-activation
        inputs, zs = [], []
        a = x
        for i in range(len(W)):
            if pre:
                z = np.matmul(W[i], a, out=self.z[i])
                z += b[i]
            else:
                z = W[i] @ a + b[i]
            inputs.append(a)
            zs.append(z)
            if i < last:
                a = np.maximum(z, 0.0, out=self.a[i]) if pre else np.maximum(z, 0.0)
        z = zs[-1]
        # the loss and the seed delta = dL/dz of the output layer
        if self.loss == "cross_entropy":  # softmax output, t a class index
            mx = z.max()
            e = np.exp(z - mx)
            s = e.sum()
            loss = (mx + np.log(s)) - z[t]
            delta = e / s
            delta[t] -= 1.0
        else:  # mse with an identity output (f' = 1), t a row of m targets
            d = z - t
            loss = (d @ d) / d.size
            delta = (2.0 / d.size) * d
        # every gradient from the weights of the forward pass, then the update (erratum 3)
        grads = []
        for i in range(last, -1, -1):
            if pre:
                dW = np.multiply.outer(delta, inputs[i], out=self.dW[i])
            else:
                dW = np.outer(delta, inputs[i])
            grads.append((i, dW, delta))
            if i > 0:
                delta = (W[i].T @ delta) * (zs[i - 1] > 0.0)
        for i, dW, db in grads:
            if pre:
                dW *= lr  # lr * dW, then W - (lr * dW): the same two roundings
                W[i] -= dW
            else:
                W[i] -= lr * dW
            b[i] -= lr * db
        return float(loss)

    def train(self, X: np.ndarray, Y: np.ndarray, epochs: int, lr: float) -> List[float]:
        losses = []
        for _ in range(epochs):
            total = 0.0
            for k in range(len(X)):
                total += self.step(X[k], Y[k], lr)
            losses.append(total / len(X))
        return losses

    def get_weights(self) -> Weights:
        return [(W.copy(), b.copy()) for W, b in zip(self.W, self.b)]


# --------------------------------------------------------------------------------------------
# The implementations: each runs `steps` per-sample SGD steps from `weights` and returns
# (a run() closure to time, a result() giving (final weights, epoch losses)).
# `steps` is a whole number of epochs over X, or a prefix of X (one partial epoch).
# --------------------------------------------------------------------------------------------
def _plan(steps: int, n: int) -> Tuple[int, int]:
    """-> (samples used, epochs)."""
    if steps >= n:
        return n, steps // n
    return steps, 1


def setup_train(case, weights, X, Y, steps):
    net = case.network()
    net.set_weights(weights)
    m, epochs = _plan(steps, len(X))
    Xs, Ys = X[:m], Y[:m]
    losses: List[float] = []

    def run():
        losses[:] = net.train(Xs, Ys, epochs, case.learning_rate)

    return run, lambda: (net.get_weights(), list(losses))


def setup_backward_rows(case, weights, X, Y, steps):
    """(b) ``net.backward`` per sample over rows split before the loop (1-D views of X's rows,
    and Y's rows or class indices): what each call costs, without NumPy's ``X[k]``."""
    net = case.network()
    net.set_weights(weights)
    m, epochs = _plan(steps, len(X))
    lr = case.learning_rate
    rows = list(zip(X[:m], Y[:m]))
    losses: List[float] = []

    def run():
        losses.clear()
        for _ in range(epochs):
            total = 0.0
            for x, y in rows:
                total += net.backward(x, y, lr)
            losses.append(total / m)

    return run, lambda: (net.get_weights(), list(losses))


def setup_backward_loop(case, weights, X, Y, steps):
    """(b') the same loop indexing ``X[k], Y[k]`` inside it (for information)."""
    net = case.network()
    net.set_weights(weights)
    m, epochs = _plan(steps, len(X))
    lr = case.learning_rate
    losses: List[float] = []

    def run():
        losses.clear()
        for _ in range(epochs):
            total = 0.0
            for k in range(m):
                total += net.backward(X[k], Y[k], lr)
            losses.append(total / m)

    return run, lambda: (net.get_weights(), list(losses))


def setup_numpy(case, weights, X, Y, steps, preallocated=False):
    model = NumpyMLP(weights, case.loss, preallocated, dtype=case.dtype)
    m, epochs = _plan(steps, len(X))
    Xs, Ys = X[:m], Y[:m]
    losses: List[float] = []

    def run():
        losses[:] = model.train(Xs, Ys, epochs, case.learning_rate)

    return run, lambda: (model.get_weights(), list(losses))


def setup_numpy_preallocated(case, weights, X, Y, steps):
    return setup_numpy(case, weights, X, Y, steps, preallocated=True)


def setup_reference(case, weights, X, Y, steps):
    assert case.dtype == "float64", "ferrinet.reference computes in float64 only"
    ref = reference.NeuralNetwork(case.sizes, activation="relu", loss=case.loss, seed=0)
    ref.set_weights([(np.asarray(W).tolist(), np.asarray(b).tolist()) for W, b in weights])
    m, epochs = _plan(steps, len(X))
    Xs, Ys = X[:m].tolist(), Y[:m].tolist()  # lists up front: the reference's own currency
    losses: List[float] = []

    def run():
        losses[:] = ref.train(Xs, Ys, epochs, case.learning_rate)

    def result():
        return [(np.array(W), np.array(b)) for W, b in ref.get_weights()], list(losses)

    return run, result


def setup_yardstick(case, weights, X, Y, steps):
    """(e) the C loop of yardstick.c on the same NumPy weights and samples (ctypes)."""
    model = Yardstick(YARDSTICK_LIBS[case.dtype], case.sizes, weights, case.loss, case.dtype)
    m, epochs = _plan(steps, len(X))
    Xs, Ys = X[:m], Y[:m]
    losses: List[float] = []

    def run():
        losses[:] = model.train(Xs, Ys, epochs, case.learning_rate)

    return run, lambda: (model.get_weights(), list(losses))


def setup_gradients(case, weights, X, Y, steps):
    """(f) ``net.gradients(x, y)`` on one sample per call, from a Python loop; the weights do
    not change. Its result, for the answer check: the first sample's gradients applied as one
    SGD step to the starting weights, and that sample's loss, to compare with one step of (a)
    (so the check runs it for 1 step)."""
    net = case.network()
    net.set_weights(weights)
    m, epochs = _plan(steps, len(X))
    lr = case.learning_rate

    def run():
        for _ in range(epochs):
            for k in range(m):
                net.gradients(X[k], Y[k])

    def result():
        grads = net.gradients(X[0], Y[0])
        stepped = [
            (W - W.dtype.type(lr) * dW, b - b.dtype.type(lr) * db)
            for (W, b), (dW, db) in zip(net.get_weights(), grads)
        ]
        return stepped, [float(net.compute_loss(X[:1], Y[:1]))]

    return run, result


@dataclass(frozen=True)
class Impl:
    key: str
    label: str
    setup: Callable


IMPLS = [
    Impl("train", "(a) ferrinet net.train, Rust loop", setup_train),
    Impl("backward", "(b) ferrinet net.backward, loop over rows", setup_backward_rows),
    Impl("backward-X[k]", "(b') the same, X[k] in the loop", setup_backward_loop),
    Impl("numpy", "(c) NumPy per-sample SGD", setup_numpy),
    Impl("numpy-out", "(c') the same, preallocated (out=)", setup_numpy_preallocated),
    Impl("reference", "(d) ferrinet.reference, pure Python", setup_reference),
    Impl("yardstick", "(e) C yardstick (yardstick.c), per sample", setup_yardstick),
    Impl("gradients", "(f) ferrinet net.gradients, per call", setup_gradients),
]


def runs_on(impl, case) -> bool:
    """(d), the pure-Python reference, computes in float64 only."""
    return impl.key != "reference" or case.dtype == "float64"


REFERENCE_SKIPPED = "skipped: ferrinet.reference computes in float64 only"


# --------------------------------------------------------------------------------------------
# Checking the answers
# --------------------------------------------------------------------------------------------
def compare(result, expected) -> Tuple[float, float, bool]:
    """-> (max abs diff of weights and losses, max relative diff, bit-identical).

    Relative: per layer, max |a - b| / max |b| over that layer's W (and likewise b), so that a
    weight passing through zero does not read as a large relative error; for the epoch losses
    |a - b| / |b|. Bit-identical: the same dtype and the same bits (float32 viewed as uint32,
    float64 as uint64)."""
    (weights, losses), (ref_weights, ref_losses) = result, expected
    max_abs, max_rel, identical = 0.0, 0.0, True
    pairs = [
        (a, b) for (Wa, ba), (Wb, bb) in zip(weights, ref_weights) for a, b in ((Wa, Wb), (ba, bb))
    ]
    pairs.append((np.array(losses), np.array(ref_losses)))
    for a_raw, b_raw in pairs:
        a_raw, b_raw = np.asarray(a_raw), np.asarray(b_raw)
        a = a_raw.astype(np.float64)  # exact for float32: the differences are measured in float64
        b = b_raw.astype(np.float64)
        if a.shape != b.shape:
            return float("inf"), float("inf"), False
        diff = np.abs(a - b)
        abs_ = float(diff.max()) if diff.size else 0.0
        scale = float(np.abs(b).max()) if b.size else 0.0
        rel = abs_ / scale if scale > 0 else (0.0 if abs_ == 0 else float("inf"))
        if np.isnan(abs_):
            abs_, rel = float("inf"), float("inf")
        max_abs, max_rel = max(max_abs, abs_), max(max_rel, rel)
        identical &= a_raw.dtype == b_raw.dtype and bool(np.array_equal(_bits(a_raw), _bits(b_raw)))
    return max_abs, max_rel, identical


def _bits(x: np.ndarray) -> np.ndarray:
    """The array's bits as unsigned integers of its item size (uint32 for float32)."""
    return np.ascontiguousarray(x).view(f"u{x.dtype.itemsize}")


def check_case(case, weights, X, Y, steps_for) -> bool:
    """Run every implementation for the same steps from the same weights; compare with (a)."""
    rtol = case.rtol
    print(
        "  answer check (from the same weights, then the steps shown; vs (a) on the same steps; "
        f"{case.dtype}, tolerance {rtol:.0e} relative):"
    )
    ok = True
    for impl in IMPLS[1:]:
        if not runs_on(impl, case):
            print(f"    {impl.label:<40} {REFERENCE_SKIPPED}")
            continue
        steps = steps_for(impl)
        expected_run, expected_result = setup_train(case, weights, X, Y, steps)
        expected_run()
        run, result = impl.setup(case, weights, X, Y, steps)
        run()
        max_abs, max_rel, identical = compare(result(), expected_result())
        good = max_rel <= rtol
        ok &= good
        verdict = "bit-identical" if identical else ("ok" if good else f"MISMATCH (> {rtol:.0e})")
        print(
            f"    {impl.label:<40} {steps:>6} steps  max abs diff {max_abs:9.2e}  "
            f"max rel diff {max_rel:9.2e}  {verdict}"
        )
    return ok


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------
def time_once(impl, case, weights, X, Y, steps) -> float:
    run, _ = impl.setup(case, weights, X, Y, steps)
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def choose_steps(impl, case, weights, X, Y, seconds: float, probe: int) -> int:
    """Steps for one run of about `seconds`: time a short probe, grow it until it lasts
    ~seconds/10, scale up. Whole epochs once a run is at least one epoch long."""
    n = len(X)
    steps = probe
    while True:
        elapsed = time_once(impl, case, weights, X, Y, steps)
        if elapsed >= seconds / 10 or elapsed * 8 >= seconds or steps >= 1_000_000:
            break
        steps = steps * 8 if steps >= n else min(steps * 8, n)
    per_step = elapsed / steps
    target = max(1, int(seconds / per_step))
    return (target // n) * n if target >= n else target


def bench_interleaved(plans, case, weights, X, Y, repeats) -> List[Optional[List[float]]]:
    """µs per step of every (impl, steps) in `plans` (None where steps is 0: not run): one
    untimed warm-up each, then `repeats` rounds, each timing every implementation once, in
    order, so that a change in the machine's load hits all of them alike; times[i][r] is the
    i-th implementation's run in round r (the per-round ratios pair them)."""
    for impl, steps in plans:
        if steps:
            time_once(impl, case, weights, X, Y, steps)
    times: List[Optional[List[float]]] = [[] if steps else None for _, steps in plans]
    for _ in range(repeats):
        for (impl, steps), row in zip(plans, times):
            if row is not None:
                row.append(time_once(impl, case, weights, X, Y, steps) / steps * 1e6)
    return times


# --------------------------------------------------------------------------------------------
# Targets (issue #15), judged per round against the C yardstick measured in the same round
# --------------------------------------------------------------------------------------------
MIN_ROUNDS = 7  # the verdict rule: the median of >= 7 per-round values meets the target


@dataclass
class Target:
    """One target: `rounds` holds the per-round value (a ratio of two rows' times in the same
    round, or a time), compared with `limit` (at most). The verdict is the median of the
    per-round values; `met` counts the rounds that met it on their own."""

    what: str
    measure: str  # how the per-round value is formed, printed beside it
    limit: float
    unit: str  # "x" (a ratio) or " µs"
    rounds: List[float]

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)

    @property
    def met(self) -> int:
        return sum(r <= self.limit for r in self.rounds)

    @property
    def passed(self) -> bool:
        return self.median <= self.limit

    def line(self) -> str:
        n = len(self.rounds)
        verdict = "PASS" if self.passed else f"MISS (needs {self.median / self.limit:.2f}x better)"
        if n < MIN_ROUNDS:
            verdict += f" (only {n} rounds: not a verdict)"
        value = f"{self.median:.3f}{self.unit}"
        return (
            f"  {self.what:<34} {self.measure:<30} {value:>10} {f'{self.met}/{n}':>6}  "
            f"target <= {self.limit:g}{self.unit}  {verdict}"
        )


def case_targets(case, times_by_key) -> List[Target]:
    """The #15 targets that apply to this case, from its per-round µs per step."""
    yard, train, backward = (times_by_key.get(k) for k in ("yardstick", "train", "backward"))
    if yard is None or train is None or backward is None:
        return []
    label = f"{case.network_name} {case.dtype}"
    if case.sizes == [2, 8, 1]:
        return [
            Target(
                f"train/sample {label}",
                "train / yardstick",
                1.1,
                "x",
                [t / y for t, y in zip(train, yard)],
            ),
            Target(f"backward/call {label}", "backward µs per call", 0.5, " µs", list(backward)),
        ]
    if case.sizes == [784, 128, 10]:
        return [
            Target(
                f"train/sample {label}",
                "train / yardstick",
                1.1,
                "x",
                [t / y for t, y in zip(train, yard)],
            ),
            Target(
                f"backward/call {label}",
                "(backward - 1 µs) / yardstick",
                1.1,
                "x",
                [(b - 1.0) / y for b, y in zip(backward, yard)],
            ),
        ]
    return []


def print_targets(targets: List[Target]) -> None:
    print(
        "\ntargets (issue #15): the median over the rounds of the per-round value (each round "
        "times every\nimplementation once, one after the other), and in how many rounds that "
        f"value met the target; the verdict needs >= {MIN_ROUNDS} rounds"
    )
    print(f"  {'what':<34} {'per-round value':<30} {'median':>10} {'met':>6}")
    for t in targets:
        print(t.line())
    print(f"  {sum(t.passed for t in targets)} of {len(targets)} targets met")


# --------------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_description() -> str:
    """The BLAS numpy was built with (numpy.show_config), and what OpenBLAS runs as, via
    threadpoolctl if it is installed, else by asking an already loaded OpenBLAS directly."""
    parts = []
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        if blas:
            parts.append(f"{blas.get('name', '?')} {blas.get('version', '')}".strip())
    except Exception:  # numpy < 1.26 has no mode="dicts"
        pass
    try:
        import threadpoolctl  # optional

        for info in threadpoolctl.threadpool_info():
            if info.get("user_api") == "blas":
                parts.append(
                    f"runtime: {info.get('internal_api')} {info.get('version')}, "
                    f"core {info.get('architecture')}, {info.get('num_threads')} threads (threadpoolctl)"
                )
    except ImportError:
        runtime = _openblas_runtime()
        if runtime:
            parts.append(runtime)
    return "; ".join(parts) or "unknown"


def _openblas_runtime() -> Optional[str]:
    """Core name and thread count of the OpenBLAS loaded in this process (Linux), or None."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("", "")):
            try:
                corename = getattr(lib, f"{prefix}openblas_get_corename{suffix}")
                threads = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}")
            except AttributeError:
                continue
            corename.restype = ctypes.c_char_p
            return f"runtime: OpenBLAS core {corename().decode()}, {threads()} threads"
    return None


def print_machine() -> None:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    print("machine")
    print(f"  cpu          {cpu_model()} ({cpus} usable cores)")
    print(f"  python       {platform.python_version()} ({platform.python_implementation()})")
    print(f"  numpy        {np.__version__}")
    print(f"  blas         {blas_description()}")
    print(f"  OPENBLAS_CORETYPE {'= ' + coretype if coretype else 'not set'}")
    profile = getattr(ferrinet._core, "BUILD_PROFILE", None)  # not exported (yet)
    built = (
        f"{profile} build"
        if profile
        else "build profile not reported; `make bench` builds --release"
    )
    print(f"  ferrinet     {ferrinet.__version__} ({built})")


def print_summary(summary) -> None:
    """One line per case (network and dtype): the median µs per step of every implementation
    (* as in the tables: fewer steps than one epoch)."""
    keys = [impl.key for impl in IMPLS]
    cases = {case.name: case for case, *_ in summary}  # in order; Case holds a list: no hash
    medians = {(case.name, key): (med, mark) for case, key, med, mark in summary}
    print("\nsummary, median µs per step")
    print(f"  {'network':<12} {'dtype':<8}" + "".join(f" {key:>10}" for key in keys))
    for case in cases.values():
        cells = []
        for key in keys:
            med, mark = medians.get((case.name, key), (None, ""))
            cells.append(f" {'skipped' if med is None else f'{med:.2f}{mark}':>10}")
        print(f"  {case.network_name:<12} {case.dtype:<8}" + "".join(cells))


# --------------------------------------------------------------------------------------------
# What the time per step means in arithmetic
# --------------------------------------------------------------------------------------------
# The speed issue's per-sample targets for 784-128-10 (µs per step of ferrinet's `train`).
TARGET_US = {"float64": 12.0, "float32": 6.0}


def step_flops(sizes: List[int]) -> int:
    """Flops of one per-sample SGD step that no implementation can skip: the forward pass
    (2 n_in n_out per layer), every weight update (the same again) and the input gradient of
    every layer but the first; 784-128-10: 4 * 101,632 + 2 * 1,280 = 409,088."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return sum(4 * a * b for a, b in pairs) + sum(2 * a * b for a, b in pairs[1:])


def one_thread_matmul_gflops(dtype: str) -> Tuple[float, str]:
    """`matmul_rate.matmul_gflops` on one BLAS thread, and how the thread count was set."""
    try:
        import threadpoolctl  # optional
    except ImportError:
        return matmul_gflops(dtype), "BLAS threads not limited (threadpoolctl not installed)"
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        return matmul_gflops(dtype), "1 BLAS thread"


def print_arithmetic(summary) -> None:
    """For the networks with a per-sample target: ferrinet's arithmetic rate, and the rate the
    target asks for, as fractions of NumPy's large matmul on this machine (measured now)."""
    lines = []
    for case, key, med, _ in summary:
        target = TARGET_US.get(case.dtype)
        if key != "train" or med is None or case.sizes != [784, 128, 10] or target is None:
            continue
        flops = step_flops(case.sizes)
        peak, how = one_thread_matmul_gflops(case.dtype)
        rate, needed = flops / med / 1e3, flops / target / 1e3
        lines.append(
            f"  {case.network_name:<12} {case.dtype:<8} {flops:,} flops/step: train "
            f"{rate:5.1f} GFLOP/s ({rate / peak:4.0%} of matmul); the target {target:g} µs needs "
            f"{needed:5.1f} GFLOP/s ({needed / peak:4.0%}); matmul {peak:5.1f} GFLOP/s ({how})"
        )
    if lines:
        print("\narithmetic rate of the per-sample step (NumPy 1024^3 matmul = 100%)")
        print("\n".join(lines))


# --------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"timed rounds, each timing every row once ({MIN_ROUNDS}; quick: 3)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="about how long one timed run lasts (0.2 s; quick: 0.01 s)",
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else MIN_ROUNDS)
    seconds = args.seconds or (0.01 if args.quick else 0.2)
    if repeats < 1 or seconds <= 0:
        parser.error("--repeats and --seconds must be positive")

    print_machine()
    try:
        YARDSTICK_LIBS.update(build_yardstick())
    except YardstickUnavailable as exc:
        print(f"\nERROR: {exc}")
        return 1
    print(f"  yardstick    benches/yardstick.c built with {' '.join(YARDSTICK_FLAGS)}")
    print(
        f"\nper-sample SGD, µs per step: median [min, max] of {repeats} interleaved rounds "
        f"(one run of about {seconds:g} s per row and round)"
    )
    all_ok = True
    summary = []
    targets: List[Target] = []
    started = time.perf_counter()
    for case in CASES:
        X, Y = case.data(seed=0)
        weights = case.network().get_weights()
        print(
            f"\n{case.name}  ({case.dtype}, {case.loss}, relu hidden, {case.n_parameters:,} "
            f"parameters, lr {case.learning_rate}, {case.n_samples} synthetic samples)"
        )
        # the answer check: one epoch (one step less than an epoch for the reference on the big
        # network, where each pure-Python step takes a good fraction of a second)
        big = case.n_parameters > 10_000
        ref_steps = (2 if args.quick else 8) if big else (32 if args.quick else case.n_samples)

        def steps_for(impl, ref_steps=ref_steps, n_samples=case.n_samples):
            if impl.key == "gradients":
                return 1  # one call's gradients, applied as a step (see setup_gradients)
            return ref_steps if impl.key == "reference" else n_samples

        all_ok &= check_case(case, weights, X, Y, steps_for)

        plans = []
        for impl in IMPLS:
            if not runs_on(impl, case):
                plans.append((impl, 0))
                continue
            probe = 1 if impl.key == "reference" else min(case.n_samples, 16)
            plans.append((impl, choose_steps(impl, case, weights, X, Y, seconds, probe)))
        all_times = bench_interleaved(plans, case, weights, X, Y, repeats)
        rows = [(impl, steps, times) for (impl, steps), times in zip(plans, all_times)]
        targets += case_targets(case, {impl.key: times for impl, _, times in rows})
        base = statistics.median(rows[0][2])
        print(
            f"  {'implementation':<40} {'steps/run':>9}  {'median':>10}  {'min':>10}  {'max':>10}  {'vs (a)':>9}"
        )
        for impl, steps, times in rows:
            if times is None:
                print(f"  {impl.label:<40} {REFERENCE_SKIPPED}")
                summary.append((case, impl.key, None, ""))
                continue
            med = statistics.median(times)
            extrapolated = " *" if impl.key == "reference" and steps < case.n_samples else ""
            print(
                f"  {impl.label:<40} {steps:>9}  {med:>10.2f}  {min(times):>10.2f}  "
                f"{max(times):>10.2f}  {med / base:>8.1f}x{extrapolated}"
            )
            summary.append((case, impl.key, med, extrapolated.strip()))
    print(
        "\n  vs (a): median time per step of the row / that of (a) ferrinet net.train (higher = "
        "slower than ferrinet).\n  *: fewer steps than one epoch, reported per step."
    )
    print_summary(summary)
    print_targets(targets)
    print_arithmetic(summary)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    if not all_ok:
        print(
            "\nANSWER CHECK FAILED: an implementation disagrees with ferrinet by more than the "
            f"tolerance ({RTOL:.0e} in float64, {RTOL_F32:.0e} in float32)"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
