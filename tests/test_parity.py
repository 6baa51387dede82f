"""The Rust network against the pure-Python reference, on the same weights.

Every hidden activation x every loss (mse with each output activation; binary_cross_entropy;
cross_entropy with class indices and with probability rows; poisson): 45 combinations, each trained
1,000 per-sample SGD steps in lockstep by ``check_parity``, plus the batch methods (``predict``,
``forward``, ``compute_loss``, ``gradients``, a batch ``backward`` and ``train``).

Tolerances, relative (``|a - b| / max(|a|, |b|, 1e-12)``, as ``check_parity``): 1e-12 for one
step and for every batch method, 1e-9 over 1,000 steps. While the core followed docs/maths.md
operation by operation the two agreed bit for bit; that is asserted separately, in
``test_bit_identical_with_reference``, so that a faster summation order in the core can relax
it without touching the tolerances. (Since kernels.rs sums dot products over 8 interleaved
partial sums, that test fails at step 1 of every combination, by a few ulps, while every
tolerance here holds: measured, at most 2.6e-15 after one step and 2.4e-10 after 1,000 steps,
the latter on a weight passing near zero (-8.4e-7, off by 6e-17).)

Why 1e-9 is safe for a core that is not bit-identical: with these nets and learning rate 0.02,
two reference networks started 1 ulp apart (every weight times 1 + 2**-52) were at most 510
ulps apart after 1,000 steps (measured over the 40 combinations; at learning rate 0.05 one
relu network amplified 7e6 times, so 0.05 would not have been safe).
"""

import functools

import ferrinet
import numpy as np
import pytest
from conftest import HIDDEN
from ferrinet import checks, reference

# (loss, output activation, kind of targets)
OUTPUTS = [("mse", name, "rows") for name in HIDDEN] + [
    ("binary_cross_entropy", "sigmoid", "rows"),
    ("cross_entropy", "softmax", "indices"),
    ("cross_entropy", "softmax", "probabilities"),  # rows in [0, 1] that need not sum to 1
]
# poisson (counts, zeros included) after the others, so that their case numbers (and seeds) stay
COMBOS = [(hidden, *output) for hidden in HIDDEN for output in OUTPUTS] + [
    (hidden, "poisson", "exp", "rows") for hidden in HIDDEN
]
IDS = [f"{h}-{loss}-{out}-{kind}" for h, loss, out, kind in COMBOS]
STEPS = 1000
LEARNING_RATE = 0.02
N_SAMPLES = 8
ONE_STEP_RTOL = 1e-12
MANY_STEPS_RTOL = 1e-9


def make_case(index):
    """A Rust network [3, 5, 4, m] (two hidden layers), its reference twin with the same
    weights, and data: 8 samples, targets in the range of the output activation."""
    hidden, loss, output, kind = COMBOS[index]
    rng = np.random.default_rng([5, index])
    m = 3 if loss == "cross_entropy" else 2
    sizes = [3, 5, 4, m]
    net = ferrinet.NeuralNetwork(
        sizes, activation=hidden, output_activation=output, loss=loss, seed=index
    )
    # small random biases, so that the bias path is exercised from the first step
    net.set_weights([(W, rng.normal(scale=0.1, size=b.shape)) for W, b in net.get_weights()])
    X = rng.normal(size=(N_SAMPLES, 3))
    shape = (N_SAMPLES, m)
    if loss == "mse":
        Y = {
            "identity": rng.normal(size=shape),
            "relu": np.abs(rng.normal(size=shape)),
            "leaky_relu": rng.normal(size=shape),
            "sigmoid": rng.uniform(size=shape),
            "tanh": rng.uniform(-0.9, 0.9, size=shape),
        }[output]
    elif loss == "binary_cross_entropy":
        Y = rng.uniform(size=shape)
    elif loss == "poisson":
        Y = rng.poisson(1.5, size=shape).astype(float)
    elif kind == "indices":
        Y = rng.integers(0, m, size=N_SAMPLES)
    else:
        Y = rng.uniform(size=shape)
    twin = reference.NeuralNetwork(
        sizes, activation=hidden, output_activation=output, loss=loss, seed=index
    )
    twin.set_weights([(W.tolist(), b.tolist()) for W, b in net.get_weights()])
    return net, twin, X, Y


@functools.lru_cache(maxsize=None)
def parity_report(index):
    net, _, X, Y = make_case(index)
    return checks.check_parity(
        net, X, Y, steps=STEPS, learning_rate=LEARNING_RATE, rtol=MANY_STEPS_RTOL
    )


@functools.lru_cache(maxsize=None)
def batch_results(index):
    """[(what, Rust value, reference value, rtol)] for every batch method, in call order."""
    net, twin, X, Y = make_case(index)
    Xl, Yl = X.tolist(), Y.tolist()
    out = [
        ("predict", net.predict(X), twin.predict(Xl), ONE_STEP_RTOL),
        ("forward(sample 3)", net.forward(X[3]), twin.forward(Xl[3]), ONE_STEP_RTOL),
        ("compute_loss", net.compute_loss(X, Y), twin.compute_loss(Xl, Yl), ONE_STEP_RTOL),
    ]
    for layer, ((dW, db), (eW, eb)) in enumerate(zip(net.gradients(X, Y), twin.gradients(Xl, Yl))):
        out.append((f"gradients dW[{layer}]", dW, eW, ONE_STEP_RTOL))
        out.append((f"gradients db[{layer}]", db, eb, ONE_STEP_RTOL))
    # one SGD step on the whole batch
    loss_net = net.backward(X, Y, 0.1)
    loss_twin = twin.backward(Xl, Yl, 0.1)
    out.append(("backward(batch) loss", loss_net, loss_twin, ONE_STEP_RTOL))
    for layer, ((W, b), (eW, eb)) in enumerate(zip(net.get_weights(), twin.get_weights())):
        out.append((f"W[{layer}] after backward(batch)", W, eW, ONE_STEP_RTOL))
        out.append((f"b[{layer}] after backward(batch)", b, eb, ONE_STEP_RTOL))
    # train: per-sample SGD in order, 25 epochs of 8 = 200 steps
    losses_net = net.train(X, Y, 25, LEARNING_RATE)
    losses_twin = twin.train(Xl, Yl, 25, LEARNING_RATE)
    out.append(("train epoch losses", losses_net, losses_twin, MANY_STEPS_RTOL))
    for layer, ((W, b), (eW, eb)) in enumerate(zip(net.get_weights(), twin.get_weights())):
        out.append((f"W[{layer}] after train", W, eW, MANY_STEPS_RTOL))
        out.append((f"b[{layer}] after train", b, eb, MANY_STEPS_RTOL))
    return out


def rel_diff(a, b):
    """As check_parity: |a - b| / max(|a|, |b|, 1e-12), 0 where equal."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    rel = np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-12)
    return np.where(a == b, 0.0, rel)


def bits_equal(a, b):
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(a.view(np.uint64) == b.view(np.uint64)))


# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("index", range(len(COMBOS)), ids=IDS)
def test_parity_over_1000_sgd_steps(index):
    report = parity_report(index)
    assert report.steps == STEPS and len(report.net_losses) == STEPS
    assert report.max_rel_diff_after_step1 <= ONE_STEP_RTOL, str(report)
    assert report.passed(), str(report)
    assert report.max_rel_diff <= MANY_STEPS_RTOL, str(report)
    # the networks trained (the loss moved), so the comparison covered changing weights
    assert report.net_losses[:N_SAMPLES] != report.net_losses[-N_SAMPLES:]


@pytest.mark.parametrize("index", range(len(COMBOS)), ids=IDS)
def test_batch_methods_match_reference(index):
    for what, got, expected, rtol in batch_results(index):
        rel = rel_diff(got, expected)
        assert rel.max(initial=0.0) <= rtol, f"{IDS[index]}: {what}: rel diff {rel.max():.3e}"


def test_training_is_stable_with_these_settings():
    """The learning rate keeps every combination's training bounded (no overflow, no NaN):
    otherwise agreement at 1e-9 would mean little."""
    for index in range(len(COMBOS)):
        losses = parity_report(index).net_losses
        assert np.all(np.isfinite(losses)) and max(losses) < 20.0, IDS[index]


# Bit identity: the Rust kernels sum dot products in 8 interleaved lanes with FMA (docs/maths.md,
# first paragraph), so Rust and the reference are not bit-identical; what still holds is that the
# first difference is rounding-sized and the tolerances above.
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("index", range(len(COMBOS)), ids=IDS)
def test_first_bit_difference_is_rounding(index):
    """Whatever the summation order, the first number whose bits differ (if any) differs by
    rounding only (a few dozen ulps at most; measured: 2.6e-15, a loss), and the batch
    methods within 1e-12."""
    report = parity_report(index)
    first = report.first_bit_difference
    if first is not None:
        assert first.rel_diff <= 1e-13, f"{IDS[index]}: {first}"
    for what, got, expected, _ in batch_results(index):
        if not bits_equal(got, expected):
            assert rel_diff(got, expected).max() <= 1e-12, f"{IDS[index]}: {what}"


# A first layer too large for the fastest caches (at least 16,384 weights) takes train's
# per-sample steps in blocks of 32 samples (rust/ferrinet-core/src/sgd_block.rs): the same
# steps, formed in another order.
# ----------------------------------------------------------------------------------------------
def blocked_case():
    rng = np.random.default_rng(17)
    sizes = [130, 128, 3]  # 16,640 first-layer weights
    net = ferrinet.NeuralNetwork(sizes, activation="relu", loss="cross_entropy", seed=3)
    X = rng.uniform(0.0, 1.0, size=(40, 130))  # 40 samples: one block of 32, one of 8
    Y = rng.integers(0, 3, size=40)
    twin = reference.NeuralNetwork(sizes, activation="relu", loss="cross_entropy", seed=3)
    twin.set_weights([(W.tolist(), b.tolist()) for W, b in net.get_weights()])
    return net, twin, X, Y


def test_blocked_train_matches_reference():
    """One epoch of 40 per-sample steps, Rust in blocks against the reference one sample at a
    time: epoch loss within 1e-13 relative and every parameter within 1e-13 of the largest
    (measured: 1.7e-16 and 7.1e-16, a few ulps)."""
    net, twin, X, Y = blocked_case()
    loss_net = net.train(X, Y, 1, LEARNING_RATE)
    loss_twin = twin.train(X.tolist(), Y.tolist(), 1, LEARNING_RATE)
    assert rel_diff(loss_net, loss_twin).max() <= 1e-13
    got = np.concatenate([np.concatenate([W.ravel(), b]) for W, b in net.get_weights()])
    want = np.concatenate(
        [
            np.concatenate([np.ravel(W), b])
            for W, b in (map(np.asarray, p) for p in twin.get_weights())
        ]
    )
    scale = np.abs(want).max()
    assert np.abs(got - want).max() <= 1e-13 * scale
    assert not bits_equal(got, want)  # the blocks ran: they round differently


def test_blocked_train_is_deterministic():
    """Where train pauses to check for Ctrl-C depends on timing; for blocks, it only ever
    pauses between whole blocks, so two runs give the same bits."""
    net, _, X, Y = blocked_case()
    a, b = net.copy(), net.copy()
    losses_a = a.train(X, Y, 3, LEARNING_RATE)
    losses_b = b.train(X, Y, 3, LEARNING_RATE)
    assert losses_a == losses_b
    for (Wa, ba), (Wb, bb) in zip(a.get_weights(), b.get_weights()):
        assert bits_equal(Wa, Wb) and bits_equal(ba, bb)
