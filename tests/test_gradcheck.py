"""Finite differences against the Rust network's gradients, and controls that must fail.

``gradcheck`` (python/ferrinet/checks.py) compares ``ferrinet.NeuralNetwork.gradients`` (Rust)
with central differences of ``compute_loss`` (Rust too, but only the forward pass). It is run on
280 random networks: depth 0-4 hidden layers, widths 1-8, 1-3 outputs (2-3 for cross_entropy),
batches of 1-4, every hidden activation x every loss / output pairing, at gradcheck's defaults
(eps 1e-6, floor 3.55e-3 * max(1, |L|), tol 1e-6), in float64.

Negative controls, asserted on EACH network (a control that passes on one network is a hole):
the article's backward pass, dW * 1.01, the error sent back through already-updated weights
(erratum 3), the gradient evaluated after the step, and mse without its 2/(n*m).
"""

import math

import ferrinet
import numpy as np
import pytest
from conftest import HIDDEN, np_activation
from ferrinet import checks, reference

# (loss, output activation, kind of targets)
LOSS_CASES = [
    ("mse", "identity", "rows"),
    ("mse", "tanh", "rows"),
    ("mse", "sigmoid", "rows"),
    ("binary_cross_entropy", "sigmoid", "rows"),
    ("cross_entropy", "softmax", "indices"),
    ("cross_entropy", "softmax", "probabilities"),  # rows in [0, 1], not summing to 1
    ("poisson", "exp", "rows"),  # counts >= 0, zeros included
]
N_CASES = 280  # every (hidden, loss) pair 8 times: case % 5 and (case // 5) % 7
TOL = 1e-6


def random_case(case, zero_biases=False):
    """A random Rust network, inputs X (n, n_in) and targets Y for case number ``case``.

    Biases are drawn N(0, 0.5) (so that no pre-activation is exactly 0 by construction) unless
    ``zero_biases`` (as initialised). The draw is repeated (same case, next attempt) while every
    weight gradient is exactly 0: a relu network whose units are all dead for every sample has
    dW = 0, and then dW * 1.01 == dW, so no check could tell the control from the truth.
    """
    hidden = HIDDEN[case % len(HIDDEN)]
    loss, output, kind = LOSS_CASES[(case // len(HIDDEN)) % len(LOSS_CASES)]
    for attempt in range(50):
        rng = np.random.default_rng([2024, case, attempt])
        depth = int(rng.integers(0, 5))
        m = int(rng.integers(2, 4)) if loss == "cross_entropy" else int(rng.integers(1, 4))
        sizes = [int(rng.integers(1, 9)) for _ in range(depth + 1)] + [m]
        net = ferrinet.NeuralNetwork(
            sizes, activation=hidden, output_activation=output, loss=loss, seed=case
        )
        if not zero_biases:
            net.set_weights(
                [(W, rng.normal(scale=0.5, size=b.shape)) for W, b in net.get_weights()]
            )
        n = int(rng.integers(1, 5))
        X = rng.normal(size=(n, sizes[0]))
        if loss == "mse":
            Y = rng.normal(size=(n, m))
        elif loss == "binary_cross_entropy":
            Y = rng.uniform(size=(n, m))
        elif loss == "poisson":
            Y = rng.poisson(1.5, size=(n, m)).astype(float)
        elif kind == "indices":
            Y = rng.integers(0, m, size=n)
        else:
            Y = rng.uniform(size=(n, m))
        if any(np.any(dW != 0.0) for dW, _ in net.gradients(X, Y)):
            return net, X, Y
    raise AssertionError(f"case {case}: no draw with a nonzero weight gradient")


# ----------------------------------------------------------------------------------------------
# An independent backward pass in numpy (docs/maths.md), with the article's mistakes as options
# ----------------------------------------------------------------------------------------------
def np_derivative(name, z, a):
    return {
        "identity": lambda: np.ones_like(z),
        "relu": lambda: (z > 0).astype(float),
        "leaky_relu": lambda: np.where(z > 0, 1.0, 0.01),
        "sigmoid": lambda: a * (1.0 - a),
        "tanh": lambda: 1.0 - a * a,
        "exp": lambda: a,
    }[name]()


def np_targets(net, Y, n):
    m = net.sizes[-1]
    Y = np.asarray(Y)
    if net.loss == "cross_entropy" and Y.ndim == 1:
        return np.eye(m)[Y]
    return np.asarray(Y, dtype=float).reshape(n, m)


def np_gradients(net, X, Y, update_before_propagating=0.0, mse_seed=None):
    """[(dW, db)] per layer by the chain rule, written again with numpy.

    ``update_before_propagating=lr``: erratum 3, the article's order: each layer's weights are
    first stepped (W -= lr dW) and the error for the layer below is then sent back through the
    NEW weights. ``mse_seed=c``: the mse seed delta = c (a - t) f'(z) instead of c = 2/(n*m).
    """
    X = np.atleast_2d(np.asarray(X, dtype=float))
    n = X.shape[0]
    weights = [(np.array(W, float), np.array(b, float)) for W, b in net.get_weights()]
    cache, a = [], X
    for (W, b), name in zip(weights, net.activations):
        z = a @ W.T + b
        cache.append((a, z, np_activation(name, z)))
        a = cache[-1][2]
    _, z, a = cache[-1]
    t = np_targets(net, Y, n)
    m = t.shape[1]
    if net.loss == "mse":
        c = 2.0 / (n * m) if mse_seed is None else mse_seed
        delta = c * (a - t) * np_derivative(net.activations[-1], z, a)
    elif net.loss in ("binary_cross_entropy", "poisson"):
        delta = (a - t) / (n * m)
    else:
        delta = (a * t.sum(axis=1, keepdims=True) - t) / n
    grads = [None] * len(weights)
    for index in reversed(range(len(weights))):
        W, b = weights[index]
        x_in = cache[index][0]
        dW, db = delta.T @ x_in, delta.sum(axis=0)
        grads[index] = (dW, db)
        W_sent = W - update_before_propagating * dW  # W itself unless erratum 3
        if index > 0:
            _, z_prev, a_prev = cache[index - 1]
            f_prime = np_derivative(net.activations[index - 1], z_prev, a_prev)
            delta = (delta @ W_sent) * f_prime
    return grads


@pytest.mark.parametrize("case", range(0, N_CASES, 3))
def test_numpy_backward_agrees_with_rust(case):
    """The numpy chain rule the controls below are built on is right: it matches the Rust
    gradients to 1e-12 (different summation orders), so each control differs from the truth
    only by the mistake it adds."""
    net, X, Y = random_case(case)
    for (dW, db), (eW, eb) in zip(net.gradients(X, Y), np_gradients(net, X, Y)):
        np.testing.assert_allclose(dW, eW, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(db, eb, rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------------------------
# The Rust gradients pass
# ----------------------------------------------------------------------------------------------
def test_the_cases_cover_every_pairing():
    seen = set()
    for case in range(N_CASES):
        net, X, Y = random_case(case)
        kind = "indices" if np.asarray(Y).ndim == 1 else "rows"
        hidden = net.activations[0] if len(net.sizes) > 2 else None
        seen.add((hidden, net.loss, net.activations[-1], kind))
        assert 1 <= len(X) <= 4 and 0 <= len(net.sizes) - 2 <= 4 and max(net.sizes) <= 8
    for hidden in HIDDEN:
        for loss, output, kind in LOSS_CASES:
            kind = "rows" if kind == "probabilities" else kind
            assert (hidden, loss, output, kind) in seen, (hidden, loss, output, kind)


@pytest.mark.parametrize("case", range(N_CASES))
def test_rust_gradients_match_finite_differences(case):
    net, X, Y = random_case(case)
    report = checks.gradcheck(net, X, Y)  # the defaults: eps 1e-6, tol 1e-6
    assert report.tol == TOL and report.eps == 1e-6
    assert report.passed(), f"{net}\n{report}"
    assert report.max_rel_error <= TOL
    # random biases: no pre-activation sits on a kink, so nothing was left out
    assert report.n_kinks == 0, str(report)
    n_params = sum(W.size + b.size for W, b in report.analytic)
    assert n_params == net.n_parameters


def test_the_old_fixed_floor_failed_some_of_these_networks():
    """Why the floor scales with the loss: with the old default (floor 1e-4) the roundoff of
    losses of a few units (~1e-9 after dividing by 2 eps) fails correct gradients."""
    old_failures = 0
    for case in range(N_CASES):
        net, X, Y = random_case(case)
        old = checks.gradcheck(net, X, Y, floor=1e-4, detect_kinks=False)
        old_failures += not old.passed()
    assert old_failures >= 10  # measured: 36-37 of 240 (two versions of the core); 36 of 280


def test_confident_cross_entropy_noise_does_not_shrink_with_the_loss():
    """L = 4e-4, but made of terms lse - z with |z| of several units: the noise of the
    differences is still ~1e-9, so a floor of 1e-4 fails correct gradients (by 5x) and the
    floor of max(1, |L|) does not."""
    rng = np.random.default_rng(8)
    net = ferrinet.NeuralNetwork([3, 6, 3], activation="tanh", loss="cross_entropy", seed=8)
    net.set_weights([(W * 8.0, rng.normal(size=b.shape)) for W, b in net.get_weights()])
    X = rng.normal(size=(4, 3))
    Y = np.argmax(net.predict(X), axis=1)  # the predicted classes
    report = checks.gradcheck(net, X, Y)
    assert report.loss < 1e-3
    assert report.floor == checks.default_floor(report.loss) == 16 * 2.0**-52 / 1e-12
    assert report.passed(), str(report)
    assert not checks.gradcheck(net, X, Y, floor=1e-4).passed()


def test_default_floor_scales_with_the_loss():
    assert checks.default_floor(0.01) == checks.default_floor(1.0) == 16 * 2.0**-52 / 1e-12
    assert checks.default_floor(5.0) == 5.0 * checks.default_floor(1.0)
    assert checks.default_floor(-5.0) == checks.default_floor(5.0)
    assert checks.default_floor(2.0, eps=1e-5, tol=1e-7) == 2.0 * 16 * 2.0**-52 / 1e-12
    assert checks.default_floor(math.nan) == checks.default_floor(1.0)
    net, X, Y = random_case(0)
    assert checks.gradcheck(net, X, Y, floor=1e-4).floor == 1e-4
    report = checks.gradcheck(net, X, Y)
    assert report.loss == net.compute_loss(X, Y)
    assert report.floor == checks.default_floor(report.loss)
    for bad in ({"eps": 0.0}, {"eps": math.inf}, {"tol": 0.0}, {"floor": -1.0}):
        with pytest.raises(ValueError):
            checks.gradcheck(net, X, Y, **bad)


# ----------------------------------------------------------------------------------------------
# Kinks
# ----------------------------------------------------------------------------------------------
def test_a_kink_by_hand():
    """[1, 1, 1], relu hidden: z0 = W0 x + b0 = 0 exactly. L(b0) = (W1 relu(b0) + b1 - t)**2 has
    slope 0 on the left and 2 (b1 - t) W1 on the right; ferrinet (like PyTorch) says 0."""
    net = ferrinet.NeuralNetwork([1, 1, 1], activation="relu", seed=0)
    net.set_weights([([[1.0]], [0.0]), ([[0.5]], [0.25])])
    x, t = [[0.0]], [[1.0]]  # z0 = 1.0 * 0.0 + 0.0
    assert net.gradients(x, t)[0][1][0] == 0.0
    right = 2.0 * (0.25 - 1.0) * 0.5
    report = checks.gradcheck(net, x, t)
    assert report.kinks_checked and report.n_kinks == 1
    kink = report.kinks[0]
    assert (kink.layer, kink.param, kink.where) == (0, "bias", "b[0]")
    assert kink.analytic == 0.0 and kink.left == 0.0
    assert kink.right == pytest.approx(right, rel=1e-6)
    assert kink.numeric == pytest.approx(right / 2, rel=1e-6)  # the mean of both sides
    assert kink.rel_error == pytest.approx(1.0)
    assert report.passed() and report.max_rel_error < TOL
    assert report.at_kink[0][1].tolist() == [True] and not report.at_kink[0][0].any()
    text = str(report)
    assert "1 parameter(s) at a kink, not counted" in text.splitlines()[0]
    assert "b[0]" in text.split("at a kink (")[1]
    # W0 multiplies x = 0: no kink in its direction, and nothing else is excused
    assert {(e.layer, e.param) for e in report.entries} == {
        (0, "weight"),
        (1, "weight"),
        (1, "bias"),
    }

    # without the kink test the central difference fails it, with a relative error of 1
    plain = checks.gradcheck(net, x, t, detect_kinks=False)
    assert not plain.passed() and plain.n_kinks == 0 and not plain.kinks_checked
    assert plain.max_rel_error == pytest.approx(1.0)

    # a wrong value outside the one-sided slopes is not excused
    def wrong(net, X, Y):
        grads = net.gradients(X, Y)
        grads[0][1][0] = 0.5  # right is -0.75, left 0
        return grads

    report = checks.gradcheck(net, x, t, gradients=wrong)
    assert not report.passed() and report.n_kinks == 0


def test_gradcheck_at_initialisation_excuses_kinks_and_only_kinks():
    """Zero biases, as initialised: a layer dead for a sample makes the next layer's z its
    bias, exactly 0. Every network must pass with the kinks left out; some have kinks, and
    those fail when the kink test is off (so the test is not vacuous)."""
    with_kinks = failing_without = 0
    for case in range(N_CASES):
        net, X, Y = random_case(case, zero_biases=True)
        report = checks.gradcheck(net, X, Y)
        assert report.passed(), f"{net}\n{report}"
        if not any(a in ("relu", "leaky_relu") for a in net.activations):
            assert not report.kinks_checked and report.n_kinks == 0
            continue
        assert report.kinks_checked
        for kink in report.kinks:
            low, high = sorted((kink.left, kink.right))
            assert low - 1e-6 <= kink.analytic <= high + 1e-6
        if report.n_kinks:
            with_kinks += 1
            failing_without += not checks.gradcheck(net, X, Y, detect_kinks=False).passed()
    assert with_kinks >= 5 and failing_without >= 5  # measured: 7 and 7 (80 kinks)


def test_no_kinks_where_the_loss_is_smooth():
    """Forced on networks without relu, the kink test finds nothing (measured: none in 2,000)."""
    for case in range(N_CASES):
        net, X, Y = random_case(case)
        if any(a in ("relu", "leaky_relu") for a in net.activations):
            continue
        assert checks.gradcheck(net, X, Y, detect_kinks=True).n_kinks == 0


# ----------------------------------------------------------------------------------------------
# Negative controls: each must fail on every network
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", range(N_CASES))
def test_one_percent_off_fails(case):
    net, X, Y = random_case(case)

    def one_percent_off(net, X, Y):
        return [(np.asarray(dW) * 1.01, db) for dW, db in net.gradients(X, Y)]

    report = checks.gradcheck(net, X, Y, gradients=one_percent_off)
    assert not report.passed(), f"{net}\n{report}"
    # every dW entry is off by 0.01/1.01 relative (plus the finite differences' own <= 1e-6);
    # entries below the floor by less
    assert 1e-4 < report.max_rel_error <= 0.01 / 1.01 + TOL
    assert report.worst.param == "weight"


@pytest.mark.parametrize("case", [c for c in range(N_CASES) if c % 2 == 0])
def test_gradients_after_the_step_fail(case):
    """The gradient evaluated at the weights after one SGD step (learning rate 0.5), not at
    the weights of the forward pass."""
    net, X, Y = random_case(case)

    def after_the_step(net, X, Y):
        stepped = net.copy()
        stepped.backward(X, Y, 0.5)
        return stepped.gradients(X, Y)

    report = checks.gradcheck(net, X, Y, gradients=after_the_step)
    assert not report.passed(), f"{net}\n{report}"
    assert report.max_rel_error > 1e-4


def _has_hidden_layer(case):
    return len(random_case(case)[0].sizes) > 2


@pytest.mark.parametrize("case", [c for c in range(N_CASES) if c % 2 == 1])
def test_error_through_updated_weights_fails(case):
    """Erratum 3: each layer's weights are stepped (learning rate 0.5) before the error goes
    back through them. A network without a hidden layer sends no error back: there the
    mistake changes nothing, and gradcheck must pass it (222 of the 280 cases have one)."""
    net, X, Y = random_case(case)

    def updated_weights_for_the_error(net, X, Y):
        return np_gradients(net, X, Y, update_before_propagating=0.5)

    report = checks.gradcheck(net, X, Y, gradients=updated_weights_for_the_error)
    if len(net.sizes) == 2:
        assert report.passed(), f"{net}\n{report}"
        return
    assert not report.passed(), f"{net}\n{report}"
    assert report.max_rel_error > 10 * TOL  # measured: >= 3.8e-5
    # only the layers below the top one are wrong: the top one is computed before any update
    top = [e for e in report.entries if e.layer == len(net.sizes) - 2]
    assert top and all(e.max_rel_error <= TOL for e in top)


def test_most_cases_have_a_hidden_layer():
    assert sum(_has_hidden_layer(c) for c in range(N_CASES)) >= 0.7 * N_CASES


def _mse_case(case):
    """An mse network whose n * m is not 2. Without the 2/(n*m) of the mean, the seed is
    (a - t) f'(z) instead of (2/(n*m)) (a - t) f'(z): the same number when n * m == 2 (one
    sample, two outputs; two samples, one output), so those batches could not tell them apart."""
    for attempt in range(100):
        net, X, Y = random_case(case + N_CASES * attempt)
        if net.loss == "mse" and len(X) * net.sizes[-1] != 2:
            return net, X, Y
    raise AssertionError(case)


@pytest.mark.parametrize("case", [c for c in range(N_CASES) if (c // 5) % len(LOSS_CASES) < 3])
def test_mse_without_its_two_over_n_fails(case):
    net, X, Y = _mse_case(case)
    n, m = len(X), net.sizes[-1]
    report = checks.gradcheck(
        net, X, Y, gradients=lambda n_, X, Y: np_gradients(n_, X, Y, mse_seed=1.0)
    )
    assert not report.passed(), f"{net}\n{report}"
    # every gradient is scaled by (n*m)/2: a relative error of |1 - f| / max(1, f) >= 1/3
    f = n * m / 2.0
    assert report.max_rel_error == pytest.approx(abs(1.0 - f) / max(1.0, f), rel=1e-6)


# The article's backward pass runs to its end only with equal widths w <= number of layers
# (reference.article_backward's docstring: erratum 2 and erratum 5 raise IndexError otherwise).
ARTICLE_SIZES = [
    [1, 1],
    [1, 1, 1],
    [2, 2, 2],
    [1, 1, 1, 1],
    [2, 2, 2, 2],
    [3, 3, 3, 3],
    [2, 2, 2, 2, 2],
    [3, 3, 3, 3, 3],
    [4, 4, 4, 4, 4],
]


@pytest.mark.parametrize("case", range(45))
def test_the_articles_backward_pass_fails(case):
    sizes = ARTICLE_SIZES[case % len(ARTICLE_SIZES)]
    hidden = HIDDEN[case % len(HIDDEN)]
    rng = np.random.default_rng([77, case])
    net = reference.NeuralNetwork(sizes, activation=hidden, loss="mse", seed=case)
    net.set_weights(
        [(W, rng.normal(scale=0.5, size=len(b)).tolist()) for W, b in net.get_weights()]
    )
    X = rng.normal(size=(int(rng.integers(1, 5)), sizes[0]))
    Y = rng.normal(size=(len(X), sizes[-1]))
    reference.article_gradients(net, X, Y)  # runs (no IndexError) for these sizes
    report = checks.gradcheck(net, X, Y, gradients=reference.article_gradients)
    assert not report.passed(), f"{net}\n{report}"
    assert report.max_rel_error > 0.01
    assert checks.gradcheck(net, X, Y).passed()  # the reference's own gradients pass
