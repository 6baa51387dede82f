"""``backward`` on one sample is ``train``'s fused per-sample step (#15): the same bits as a
one-sample ``train`` call, one pass over each layer's weights; a step that would make a weight
non-finite is still refused and changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import same_weights
from ferrinet import DivergenceError, NeuralNetwork

CASES = [
    ([784, 128, 10], "relu", "cross_entropy"),
    ([2, 8, 1], "tanh", "mse"),
    ([5, 16, 8, 3], "sigmoid", "binary_cross_entropy"),
    ([3, 4], "relu", "mse"),
]


def sample(rng, sizes, loss):
    x = rng.normal(size=sizes[0])
    m = sizes[-1]
    if loss == "cross_entropy":
        c = int(rng.integers(0, m))
        return x, c, np.array([c])
    if loss == "binary_cross_entropy":
        t = (rng.uniform(size=m) > 0.5).astype(float)
        return x, t, t[None]
    t = rng.normal(size=m)
    return x, t, t[None]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes, activation, loss", CASES, ids=lambda v: str(v))
def test_backward_on_one_sample_equals_a_one_sample_train_step(dtype, sizes, activation, loss):
    rng = np.random.default_rng(1)
    net = NeuralNetwork(sizes, activation=activation, loss=loss, seed=2, dtype=dtype)
    twin = NeuralNetwork(sizes, activation=activation, loss=loss, seed=2, dtype=dtype)
    for _ in range(6):
        x, y, y_batch = sample(rng, sizes, loss)
        step_loss = net.backward(x, y, 0.05)
        (epoch_loss,) = twin.train(x[None], y_batch, 1, 0.05)
        assert same_weights(net, twin)
        assert step_loss == epoch_loss
    # and after another method changed the weights (the bound is looked at again)
    net.set_weights(net.get_weights())
    x, y, y_batch = sample(rng, sizes, loss)
    net.backward(x, y, 0.05)
    twin.train(x[None], y_batch, 1, 0.05)
    assert same_weights(net, twin)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_step_that_would_overflow_is_refused_and_changes_nothing(dtype):
    """A weight near the largest float: the step cannot be proven finite up front, so backward
    takes the checked path, which refuses it; the weights are unchanged, and a sane step
    afterwards is again train's."""
    big = np.finfo(dtype).max
    net = NeuralNetwork([2, 3, 1], activation="identity", seed=0, dtype=dtype)
    weights = net.get_weights()
    weights[0][0][0, 0] = big * 0.9
    net.set_weights(weights)
    before = net.get_weights()
    with pytest.raises(DivergenceError):
        net.backward([1.0, 1.0], [-1.0], 1e30 if dtype == "float64" else 1e10)
    for (w, b), (v, c) in zip(net.get_weights(), before):
        assert np.array_equal(w, v) and np.array_equal(b, c)
    # a huge step on sane weights is refused too
    sane = NeuralNetwork([2, 3, 1], seed=0, dtype=dtype)
    kept = sane.get_weights()
    with pytest.raises(DivergenceError):
        sane.backward([1e3, 1e3], [1e3], float(big))
    for (w, b), (v, c) in zip(sane.get_weights(), kept):
        assert np.array_equal(w, v) and np.array_equal(b, c)
    twin = sane.copy()
    sane.backward([0.5, -0.5], [0.2], 0.1)
    twin.train(np.array([[0.5, -0.5]]), np.array([0.2]), 1, 0.1)
    assert same_weights(sane, twin)


# ----------------------------------------------------------------------------------------------
# Ctrl-C everywhere: long calls look for signals while they run (a count of looks, not a
# time), and a real signal mid-call raises KeyboardInterrupt with the network intact
# ----------------------------------------------------------------------------------------------
def big_data(n=200_000, dtype=np.float64):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 64)).astype(dtype), rng.integers(0, 10, size=n)


def test_long_calls_look_for_signals_while_they_run():
    from ferrinet import _core

    X, y = big_data()
    net = NeuralNetwork([64, 128, 128, 10], loss="cross_entropy", seed=0)
    calls = {
        "compute_loss": lambda: net.compute_loss(X, y),
        "evaluate": lambda: net.evaluate(X, y),
        "predict": lambda: net.predict(X),
        "fit's data check": lambda: net._check_data(X, y),
    }
    for name, call in calls.items():
        before = _core._signal_polls()
        call()
        # chunks start at one block of 256 rows and at most double: 200,000 rows take >= 9
        assert _core._signal_polls() - before >= 9, name


@pytest.mark.parametrize("method", ["compute_loss", "evaluate", "predict"])
def test_a_signal_mid_call_raises_keyboard_interrupt_and_the_network_still_works(method):
    import signal

    X, y = big_data(400_000, np.float32)
    net = NeuralNetwork([64, 128, 128, 10], loss="cross_entropy", seed=0, dtype="float32")
    expected = net.predict(X[:300])
    weights = net.get_weights()

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        with pytest.raises(KeyboardInterrupt):
            if method == "predict":
                net.predict(X)
            else:
                getattr(net, method)(X, y)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert np.array_equal(net.predict(X[:300]), expected)
    for (w, b), (v, c) in zip(net.get_weights(), weights):
        assert np.array_equal(w, v) and np.array_equal(b, c)
    assert np.isfinite(net.evaluate(X[:1000], y[:1000])["loss"])
