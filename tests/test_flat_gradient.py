"""The flat parameter vector and the full-batch loss-and-gradient (issue #16 item 1):
``get_flat_parameters``, ``set_flat_parameters`` and ``loss_and_gradient``, the entry through
which a general-purpose optimizer (scipy's L-BFGS-B here, ferrinet.sklearn's lbfgs) drives a
``NeuralNetwork``.

The layout is scikit-learn's ``_pack``: every layer's W transposed to (n_in, n_out) and
raveled, then every bias. The gradient is computed 256 rows at a time and the blocks' parts
added in block order (the core's flat.rs), so its bits do not depend on the thread count; on
one block it is ``gradients`` itself, bit for bit, and its loss is ``compute_loss``'s on any
number of rows.
"""

import ferrinet
import numpy as np
import pytest

LOSSES = ["mse", "binary_cross_entropy", "cross_entropy", "poisson"]


def _problem(loss, n=40, sizes=(5, 7, 6, 3), seed=0, dtype="float64"):
    rng = np.random.RandomState(seed)
    net = ferrinet.NeuralNetwork(list(sizes), activation="tanh", loss=loss, seed=seed, dtype=dtype)
    X = rng.randn(n, sizes[0])
    m = sizes[-1]
    if loss == "cross_entropy":
        Y = rng.randint(0, m, n)
    elif loss == "binary_cross_entropy":
        Y = (rng.rand(n, m) > 0.5).astype(float)
    elif loss == "poisson":
        Y = rng.poisson(1.5, (n, m)).astype(float)
    else:
        Y = rng.randn(n, m)
    w = rng.uniform(0.0, 2.0, n)
    return net, X, Y, w


def _pack(weights):
    """scikit-learn's ``_pack`` of ferrinet's [(W (n_out, n_in), b)] (written out here)."""
    return np.concatenate([W.T.ravel() for W, _ in weights] + [b for _, b in weights])


@pytest.mark.parametrize("loss", LOSSES)
def test_the_flat_gradient_is_the_derivative_of_the_loss(loss):
    # central differences of loss_and_gradient's own loss, parameter by parameter
    net, X, Y, w = _problem(loss)
    l2 = 0.05
    theta = net.get_flat_parameters()
    value, grad = net.loss_and_gradient(X, Y, l2=l2, sample_weight=w)
    h = 1e-6
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        net.set_flat_parameters(up)
        f_up = net.loss_and_gradient(X, Y, l2=l2, sample_weight=w)[0]
        net.set_flat_parameters(down)
        f_down = net.loss_and_gradient(X, Y, l2=l2, sample_weight=w)[0]
        numeric[i] = (f_up - f_down) / (2 * h)
    net.set_flat_parameters(theta)
    assert net.loss_and_gradient(X, Y, l2=l2, sample_weight=w)[0] == value
    err = np.abs(grad - numeric).max() / max(np.abs(numeric).max(), 1e-12)
    assert err < 1e-7, err  # measured 1.4e-9 to 4.7e-9 (h = 1e-6)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("weighted", [False, True])
def test_one_block_is_gradients_repacked_bit_for_bit(loss, weighted):
    net, X, Y, w = _problem(loss, n=200)
    # on several threads `gradients` splits the rows between them (sums rounded per share),
    # while the flat gradient's bits never depend on the count: one thread's `gradients`
    net.n_threads = 1
    sw = w if weighted else None
    value, grad = net.loss_and_gradient(X, Y, l2=0.01, sample_weight=sw)
    expected = _pack(net.gradients(X, Y, l2=0.01, sample_weight=sw))
    np.testing.assert_array_equal(grad, expected)
    assert value == net.compute_loss(X, Y, l2=0.01, sample_weight=sw)
    assert grad.dtype == np.float64 and grad.shape == (net.n_parameters,)


@pytest.mark.parametrize("loss", LOSSES)
def test_many_blocks_equal_gradients_to_rounding_and_compute_loss_exactly(loss):
    net, X, Y, w = _problem(loss, n=1000)
    value, grad = net.loss_and_gradient(X, Y, l2=0.01, sample_weight=w)
    expected = _pack(net.gradients(X, Y, l2=0.01, sample_weight=w))
    np.testing.assert_allclose(grad, expected, rtol=1e-11, atol=1e-15)
    # the loss is reduced over the same 256-row blocks as compute_loss / evaluate
    assert value == net.compute_loss(X, Y, l2=0.01, sample_weight=w)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_the_bits_do_not_depend_on_the_thread_count(loss):
    # 2,100 rows: 9 blocks, so every count below splits them differently (and the wide layer
    # is cut between threads inside the sums of the blocks' gradients for counts > 1)
    net, X, Y, w = _problem(loss, n=2100, sizes=(30, 300, 250, 4))
    results = {}
    for k in sorted({1, 2, 3, ferrinet.max_threads()}):
        net.n_threads = k
        value, grad = net.loss_and_gradient(X, Y, l2=0.1, sample_weight=w)
        results[k] = (value, grad.tobytes())
    assert len(set(results.values())) == 1, sorted(results)


def test_the_flat_vector_is_sklearns_pack():
    pytest.importorskip("sklearn")
    from ferrinet.sklearn import MLPClassifier
    from sklearn.neural_network._multilayer_perceptron import _pack as sk_pack

    rng = np.random.RandomState(0)
    X, y = rng.randn(60, 4), rng.randint(0, 3, 60)
    est = MLPClassifier(hidden_layer_sizes=(6, 5), max_iter=3, random_state=0)
    with pytest.warns(Warning):  # ConvergenceWarning after 3 epochs
        est.fit(X, y)
    theta = est.network_.get_flat_parameters()
    np.testing.assert_array_equal(theta, sk_pack(est.coefs_, est.intercepts_))
    # and back: set_flat_parameters is its inverse
    net = ferrinet.NeuralNetwork([4, 6, 5, 3], loss="cross_entropy", seed=9)
    net.set_flat_parameters(theta)
    for (W, b), c, i in zip(net.get_weights(), est.coefs_, est.intercepts_):
        np.testing.assert_array_equal(W, c.T)
        np.testing.assert_array_equal(b, i)


def test_get_flat_parameters_is_a_copy_and_follows_set_weights():
    net = ferrinet.NeuralNetwork([3, 4, 2], seed=1)
    theta = net.get_flat_parameters()
    assert theta.shape == (net.n_parameters,) and theta.dtype == np.float64
    np.testing.assert_array_equal(theta, _pack(net.get_weights()))
    theta[:] = 0.0
    assert np.any(net.get_flat_parameters() != 0.0)
    new = np.arange(net.n_parameters, dtype=float) / 10
    net.set_flat_parameters(list(new))  # any 1-D array-like of reals
    np.testing.assert_array_equal(net.get_flat_parameters(), new)
    np.testing.assert_array_equal(net.get_weights()[0][0], new[:12].reshape(3, 4).T)


def test_float32_networks_work_in_float32():
    net64, X, Y, w = _problem("mse")
    net32 = ferrinet.NeuralNetwork([5, 7, 6, 3], activation="tanh", seed=0, dtype="float32")
    theta = net64.get_flat_parameters()
    net32.set_flat_parameters(theta)
    assert net32.get_flat_parameters().dtype == np.float32
    value, grad = net32.loss_and_gradient(X, Y, sample_weight=w)
    assert grad.dtype == np.float32
    v64, g64 = net64.loss_and_gradient(X, Y, sample_weight=w)
    assert value == pytest.approx(v64, rel=1e-5)
    np.testing.assert_allclose(grad, g64, rtol=1e-3, atol=1e-5)


def _unchanged(net):
    return net.get_flat_parameters().tobytes()


@pytest.mark.parametrize(
    "theta, error, message",
    [
        (np.zeros(5), ValueError, "expected 55 values"),
        (np.zeros((5, 11)), ValueError, "theta must be a 1-D array of n_parameters = 55"),
        (np.r_[np.zeros(54), np.nan], ValueError, "must be finite, got NaN at index 54"),
        (np.r_[np.inf, np.zeros(54)], ValueError, "must be finite, got inf at index 0"),
        ("weights", TypeError, "theta must be an array"),
        (np.array(["a"] * 55), TypeError, "theta must hold real numbers"),
        (np.zeros(55, dtype=complex), TypeError, "theta must hold real numbers"),
    ],
)
def test_set_flat_parameters_refuses_bad_input_and_changes_nothing(theta, error, message):
    net = ferrinet.NeuralNetwork([4, 5, 5], seed=2)  # 20 + 25 + 5 + 5 = 55 parameters
    before = _unchanged(net)
    with pytest.raises(error, match=message):
        net.set_flat_parameters(theta)
    assert _unchanged(net) == before


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda n, X, Y: n.loss_and_gradient(X[:, :3], Y), ValueError, "takes 5 inputs"),
        (lambda n, X, Y: n.loss_and_gradient(X, Y[:-1]), ValueError, "samples"),
        (lambda n, X, Y: n.loss_and_gradient(X, Y, l2=-1.0), ValueError, "l2 must be"),
        (lambda n, X, Y: n.loss_and_gradient(X, Y, l2="a"), TypeError, "real number"),
        (
            lambda n, X, Y: n.loss_and_gradient(X, Y, sample_weight=np.ones(3)),
            ValueError,
            "sample_weight must have shape",
        ),
        (
            lambda n, X, Y: n.loss_and_gradient(X, Y, sample_weight=-np.ones(len(X))),
            ValueError,
            "finite and >= 0",
        ),
        (lambda n, X, Y: n.loss_and_gradient(np.where(X > 1, np.nan, X), Y), ValueError, "finite"),
        (lambda n, X, Y: n.loss_and_gradient({"x": 1}, Y), TypeError, "x must be an array"),
    ],
)
def test_loss_and_gradient_refuses_bad_input(call, error, message):
    net, X, Y, _ = _problem("mse", n=600)
    before = _unchanged(net)
    with pytest.raises(error, match=message):
        call(net, X, Y)
    assert _unchanged(net) == before


def test_sparse_input_is_refused_with_what_to_do():
    sparse = pytest.importorskip("scipy.sparse")
    net, X, Y, _ = _problem("mse")
    with pytest.raises(TypeError, match="dense"):
        net.loss_and_gradient(sparse.csr_matrix(X), Y)


def test_scipy_lbfgs_trains_a_network_through_the_flat_entry():
    optimize = pytest.importorskip("scipy.optimize")
    X, Y = ferrinet.datasets.moons(200, noise=0.1, seed=0)
    net = ferrinet.NeuralNetwork([2, 16, 2], activation="tanh", loss="cross_entropy", seed=0)

    def fun(theta):
        net.set_flat_parameters(theta)
        return net.loss_and_gradient(X, Y, l2=1e-4)

    start = fun(net.get_flat_parameters())[0]
    res = optimize.minimize(fun, net.get_flat_parameters(), jac=True, method="L-BFGS-B")
    net.set_flat_parameters(res.x)
    assert res.fun < start / 10
    assert net.evaluate(X, Y)["accuracy"] > 0.97


def test_a_large_call_releases_the_gil_and_looks_for_signals():
    import time

    from conftest import count_while
    from ferrinet import _core

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50_000, 64)), rng.integers(0, 10, size=50_000)
    net = ferrinet.NeuralNetwork([64, 128, 128, 10], loss="cross_entropy", seed=0)
    before = _core._signal_polls()
    alone, _ = count_while(lambda: time.sleep(0.3))
    results = []
    during, took = count_while(lambda: results.append(net.loss_and_gradient(X, y)))
    # chunks start at one block of 256 rows and at most double: 196 blocks take >= 8 chunks
    assert _core._signal_polls() - before >= 8
    assert np.isfinite(results[0][0])
    # a held GIL would leave the counting thread (almost) nothing while the call runs
    assert during > 0.2 * alone, f"{during:.3g}/s during a {took:.2f} s call vs {alone:.3g}/s"
