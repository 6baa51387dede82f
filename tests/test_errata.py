"""One test per point of docs/article-errata.md (1-11), on the Rust network ``ferrinet.NeuralNetwork``.

Each asserts something that the article's version gets wrong: where the article's backward
pass can run, ``reference.article_backward`` / ``article_gradients`` (the blog post translated
line by line, wrong on purpose) shows what it does instead. Hand computations use numbers that
are exact in binary where the test compares bit for bit.
"""

import math
import subprocess
import sys

import ferrinet
import numpy as np
import pytest
from ferrinet import checks, reference

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([[0.0], [1.0], [1.0], [0.0]])


def reference_twin(net):
    """The pure-Python reference with the Rust network's architecture and weights."""
    twin = reference.NeuralNetwork(
        net.sizes,
        activation=net.activations[:-1],
        output_activation=net.activations[-1],
        loss=net.loss,
    )
    twin.set_weights([(W.tolist(), b.tolist()) for W, b in net.get_weights()])
    return twin


# ----------------------------------------------------------------------------------------------
def test_erratum_1_last_layer_gradient_uses_the_hidden_activation():
    """dW of the last layer = delta (x) hidden activation h, not delta (x) output o.
    [2, 2, 2], relu hidden, identity output, mse, one sample: delta = (2 / m)(o - t) = o - t."""
    net = ferrinet.NeuralNetwork([2, 2, 2], activation="relu", loss="mse", seed=0)
    W0, b0 = np.array([[0.5, 0.25], [0.25, 0.75]]), np.array([0.25, 0.0])
    W1, b1 = np.array([[0.5, 1.0], [0.75, 0.25]]), np.array([0.0, 0.5])
    net.set_weights([(W0, b0), (W1, b1)])
    x, t = np.array([1.0, 2.0]), np.array([0.25, 0.5])
    h = np.maximum(W0 @ x + b0, 0.0)  # (1.25, 1.75): all positive, the relu passes everything
    o = W1 @ h + b1  # (2.375, 1.875)
    np.testing.assert_array_equal(net.forward(x), o)
    dW1, db1 = net.gradients(x, t)[1]
    np.testing.assert_array_equal(dW1, np.outer(o - t, h))  # exact: every number is binary
    np.testing.assert_array_equal(db1, o - t)
    assert not np.allclose(dW1, np.outer(o - t, o), rtol=0.1)  # the article's delta (x) o

    # the article's backward pass does use the output: its implied gradient is (o - t) (x) o
    # (m = 2 makes its error t - o the right scale, erratum 7; o > 0 keeps its relu test quiet)
    article = reference.article_gradients(reference_twin(net), [x.tolist()], [t.tolist()])
    np.testing.assert_allclose(article[1][0], np.outer(o - t, o), rtol=1e-9)


def test_erratum_2_layers_of_different_widths():
    """The article sizes its error vector by the cached output and panics (IndexError here)
    when the widths differ; ferrinet trains [2, 8, 1] and its gradients are right."""
    net = ferrinet.NeuralNetwork([2, 8, 1], activation="tanh", loss="mse", seed=2)
    with pytest.raises(IndexError):
        reference.article_backward(reference_twin(net), [0.5, -0.5], [1.0], 0.1)

    assert checks.gradcheck(net, XOR_X, XOR_Y).passed()
    losses = net.train(XOR_X, XOR_Y, epochs=500, learning_rate=0.1)
    assert losses[-1] < 0.05 * losses[0]
    assert np.array_equal(np.round(net.predict(XOR_X)), XOR_Y)
    for sizes in ([3, 8, 5, 1], [1, 2, 7, 3], [5, 1, 4]):
        wide = ferrinet.NeuralNetwork(sizes, activation="sigmoid", seed=3)
        X = np.random.default_rng(3).normal(size=(4, sizes[0]))
        Y = np.random.default_rng(4).normal(size=(4, sizes[-1]))
        report = checks.gradcheck(wide, X, Y)
        assert report.passed(), str(report)


def test_erratum_3_error_goes_back_through_the_weights_of_the_forward_pass():
    """[1, 1, 1], identity activations: W1 = 1, b = 0, x = 0.5, t = 1.5, so h = o = 0.5.
    The first layer's step must use the second layer's weight BEFORE its update."""
    learning_rate = 0.5
    net = ferrinet.NeuralNetwork([1, 1, 1], activation="identity", loss="mse", seed=0)
    net.set_weights([([[1.0]], [0.0]), ([[1.0]], [0.0])])
    x, t = 0.5, 1.5
    w0, w1 = 1.0, 1.0
    h = w0 * x  # 0.5
    o = w1 * h  # 0.5
    delta1 = 2.0 * (o - t)  # dL/do of the mse (n = m = 1): -2
    w1_updated = w1 - learning_rate * delta1 * h  # 1.5
    right = w0 - learning_rate * (delta1 * w1) * x  # 1.5: error through w1 = 1.0
    wrong = w0 - learning_rate * (delta1 * w1_updated) * x  # 1.75: through w1 = 1.5

    assert net.backward([x], [t], learning_rate) == (o - t) ** 2
    (W0, _), (W1, _) = net.get_weights()
    assert W1[0, 0] == w1_updated
    assert W0[0, 0] == right != wrong

    # the article's order: its layer-0 step is lr * (t - o) * w1_updated * x (with its own
    # error t - o and w1 += lr (t - o) o: errata 7 and 1, here o = h, so only 3 differs)
    twin = reference.NeuralNetwork([1, 1, 1], activation="identity", loss="mse")
    twin.set_weights([([[1.0]], [0.0]), ([[1.0]], [0.0])])
    reference.article_backward(twin, [x], [t], learning_rate)
    article_w1 = w1 + learning_rate * (t - o) * o  # 1.25
    (A0, _), (A1, _) = twin.get_weights()
    assert A1[0][0] == article_w1
    assert A0[0][0] == w0 + learning_rate * (t - o) * article_w1 * x  # 1.3125: the new w1
    assert A0[0][0] != w0 + learning_rate * (t - o) * w1 * x  # 1.25: the old one


def test_erratum_4_backward_is_a_plain_repeatable_step():
    """The article's backward does not compile: it compares `layer != self.layers.first()`
    while `iter_mut()` holds the layers (E0502), and Layer has no PartialEq. Deriving
    PartialEq would have made it compare layers BY VALUE, so a network whose layers are equal
    would treat every layer as the first. ferrinet walks the layers by index: a network with
    two identical layers gets the right gradients, computing them twice gives the same bits
    and leaves the model alone, and backward can be called in a loop."""
    net = ferrinet.NeuralNetwork([3, 3, 3], activation="tanh", output_activation="tanh", seed=4)
    W, b = net.get_weights()[0]
    b = np.array([0.1, -0.2, 0.3])
    net.set_weights([(W, b), (W, b)])  # two equal layers
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(4, 3)), rng.uniform(-0.5, 0.5, size=(4, 3))
    report = checks.gradcheck(net, X, Y)
    assert report.passed(), str(report)
    twin = reference_twin(net)
    for (dW, db), (eW, eb) in zip(net.gradients(X, Y), twin.gradients(X.tolist(), Y.tolist())):
        np.testing.assert_allclose(dW, eW, rtol=1e-12, atol=1e-16)
        np.testing.assert_allclose(db, eb, rtol=1e-12, atol=1e-16)
    # the two layers' gradients differ although the layers are equal
    assert not np.array_equal(net.gradients(X, Y)[0][0], net.gradients(X, Y)[1][0])

    before = net.get_weights()
    first, second = net.gradients(X, Y), net.gradients(X, Y)
    for (dW1, db1), (dW2, db2), (W0, b0), (W1, b1) in zip(first, second, before, net.get_weights()):
        assert np.array_equal(dW1, dW2) and np.array_equal(db1, db2)
        assert np.array_equal(W0, W1) and np.array_equal(b0, b1)
    losses = [net.backward(X, Y, 0.1) for _ in range(50)]
    assert losses[-1] < losses[0]


def test_erratum_5_no_recompute_and_layers_of_any_width():
    """The article indexes the layer list by a neuron count (`self.layers[n_neurons - 1]`): with
    [3, 3, 3] it asks for layer 2 of 2. ferrinet uses what its forward pass cached: backward
    returns the loss of the weights it started from, steps exactly along `gradients`, and the
    gradients of networks of mixed widths match finite differences."""
    with pytest.raises(IndexError):
        net = ferrinet.NeuralNetwork([3, 3, 3], activation="relu", seed=5)
        reference.article_backward(reference_twin(net), [0.5, 0.2, 0.1], [1.0, 0.0, 0.5], 0.1)

    rng = np.random.default_rng(5)
    for sizes in ([3, 3, 3], [4, 7, 2, 5], [2, 1, 6, 1]):
        net = ferrinet.NeuralNetwork(sizes, activation="leaky_relu", seed=5)
        net.set_weights([(W, rng.normal(scale=0.3, size=b.shape)) for W, b in net.get_weights()])
        X, Y = rng.normal(size=(3, sizes[0])), rng.normal(size=(3, sizes[-1]))
        report = checks.gradcheck(net, X, Y)
        assert report.passed(), str(report)
        before, grads = net.get_weights(), net.gradients(X, Y)
        loss_before = net.compute_loss(X, Y)
        assert net.backward(X, Y, 0.1) == loss_before
        for (W0, b0), (W1, b1), (dW, db) in zip(before, net.get_weights(), grads):
            assert np.array_equal(W1, W0 - 0.1 * dW) and np.array_equal(b1, b0 - 0.1 * db)


def test_erratum_6_the_output_layer_has_its_own_activation():
    """Identity output for regression: negative outputs, y = -x is learnt. A relu output (the
    article's every-neuron ReLU) cannot go below 0, and once its z < 0 for every sample its
    gradient is 0 forever. A sigmoid output uses the sigmoid's derivative, not a relu test."""
    x = np.linspace(-1.0, 1.0, 21)[:, None]
    y = -x
    net = ferrinet.NeuralNetwork([1, 8, 1], activation="tanh", loss="mse", seed=6)
    assert net.activations[-1] == "identity"
    losses = net.train(x, y, epochs=300, learning_rate=0.05)
    prediction = net.predict(x)
    assert losses[-1] < 1e-3
    assert prediction.min() < -0.9 and np.abs(prediction - y).max() < 0.1

    dead = ferrinet.NeuralNetwork([1, 8, 1], activation="tanh", output_activation="relu", seed=6)
    W, b = dead.get_weights()[1]
    dead.set_weights([dead.get_weights()[0], (W, np.array([-5.0]))])  # z < 0 for every x
    assert np.all(dead.predict(x) == 0.0)  # never the negative targets
    before = dead.get_weights()
    dead_losses = dead.train(x, y, epochs=20, learning_rate=0.05)
    assert dead_losses[0] == dead_losses[-1] > 0.3
    for (W0, b0), (W1, b1) in zip(before, dead.get_weights()):
        assert np.array_equal(W0, W1) and np.array_equal(b0, b1)

    sig = ferrinet.NeuralNetwork([2, 3, 1], activation="relu", output_activation="sigmoid", seed=6)
    X, Y = np.array([[0.5, -1.0], [1.0, 0.25]]), np.array([[0.9], [0.1]])
    assert checks.gradcheck(sig, X, Y).passed()
    o = sig.predict(X)
    db = sig.gradients(X, Y)[1][1]
    # dL/db = sum over samples of (2/n)(o - t) * o (1 - o); the relu test would drop o (1 - o)
    np.testing.assert_allclose(db, [np.sum(2.0 / 2 * (o - Y) * o * (1 - o))], rtol=1e-14)
    assert not np.allclose(db, [np.sum(2.0 / 2 * (o - Y))], rtol=0.1)


def test_erratum_7_the_gradient_is_the_derivative_of_the_mean_squared_error():
    """L = mean over n*m of (p - t)**2 (PyTorch MSELoss, reduction 'mean'); its derivative is
    dL/dp = 2 (p - t) / (n*m), the one autograd gives. One layer, identity output, n = 3, m = 2:
    dW = sum_k (2/(n m)) (p_k - t_k) (x) x_k, db = sum_k (2/(n m)) (p_k - t_k). The article's
    error t - p is that times -(n m)/2 = -3."""
    net = ferrinet.NeuralNetwork([2, 2], loss="mse", seed=7)
    rng = np.random.default_rng(7)
    X, T = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    W, b = net.get_weights()[0]
    P = X @ W.T + b
    n, m = P.shape
    assert net.compute_loss(X, T) == pytest.approx(np.mean((P - T) ** 2), rel=1e-15)
    dP = 2.0 * (P - T) / (n * m)
    dW, db = net.gradients(X, T)[0]
    np.testing.assert_allclose(dW, dP.T @ X, rtol=1e-14)
    np.testing.assert_allclose(db, dP.sum(axis=0), rtol=1e-14)
    assert checks.gradcheck(net, X, T).passed()

    def article_scale(net, X, Y):  # the chain rule seeded with t - p, i.e. -(n m)/2 times dP
        return [(-(T - P).T @ X, -(T - P).sum(axis=0))]

    np.testing.assert_allclose(article_scale(net, X, T)[0][1], db * (n * m / 2), rtol=1e-14)
    report = checks.gradcheck(net, X, T, gradients=article_scale)
    assert not report.passed() and report.max_rel_error == pytest.approx(2.0 / 3.0, rel=1e-6)

    # the article's own code, on [1, 1] with p > 0: its per-sample step is lr (t - p) x,
    # half the true gradient 2 (p - t) x for n = m = 1
    one = ferrinet.NeuralNetwork([1, 1], loss="mse", seed=7)
    one.set_weights([([[0.75]], [0.5])])
    article = reference.article_gradients(reference_twin(one), [[2.0]], [[0.5]])
    true = one.gradients([2.0], [0.5])
    np.testing.assert_allclose(article[0][0], 0.5 * true[0][0], rtol=1e-9)
    np.testing.assert_allclose(article[0][1], 0.5 * true[0][1], rtol=1e-9)


def test_erratum_8_backward_returns_the_loss_of_its_forward_pass():
    """The article's backward returns nothing, so its train runs a second forward pass to
    report the error. ferrinet's backward returns the loss of the forward pass it did (the
    loss before its step, bit for bit), and train's epoch loss is the mean of those losses:
    a lockstep replay with backward reproduces it. (How many forward passes run cannot be
    seen from Python; this pins the contract that makes the second one needless.)

    The replay agrees to 1e-12, not bit for bit: since the core's fast kernels, train's
    per-sample step is not W - lr * dW evaluated as backward evaluates it, and the weights
    drift apart by a few ulps (measured: 8e-17 after one epoch)."""
    twin = reference.NeuralNetwork([2, 2, 2], activation="relu")
    assert reference.article_backward(twin, [0.5, 0.5], [1.0, 0.0], 0.1) is None

    net = ferrinet.NeuralNetwork([2, 6, 3], activation="tanh", loss="cross_entropy", seed=8)
    rng = np.random.default_rng(8)
    X, labels = rng.normal(size=(5, 2)), rng.integers(0, 3, size=5)
    for k in range(5):
        loss_before = net.compute_loss(X[k], int(labels[k]))
        assert net.backward(X[k], int(labels[k]), 0.1) == loss_before
        assert net.compute_loss(X[k], int(labels[k])) != loss_before  # it did step

    replay = net.copy()
    epoch_losses = net.train(X, labels, epochs=4, learning_rate=0.1)
    assert len(epoch_losses) == 4 and epoch_losses[-1] < epoch_losses[0]
    for epoch in range(4):
        total = 0.0
        for k in range(5):
            total += replay.backward(X[k], int(labels[k]), 0.1)
        assert epoch_losses[epoch] == pytest.approx(total / 5, rel=1e-12, abs=0.0)
    for (W0, b0), (W1, b1) in zip(net.get_weights(), replay.get_weights()):
        np.testing.assert_allclose(W0, W1, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b0, b1, rtol=1e-12, atol=1e-15)


def test_erratum_9_seeded_random_initialisation():
    """Same seed, same weights (in a fresh process too); He-uniform for relu, Glorot-uniform
    for tanh/sigmoid; the neurons of a layer differ (equal neurons would stay equal forever)."""
    program = (
        "import ferrinet, sys\n"
        "net = ferrinet.NeuralNetwork([4, 16, 8, 3], activation='relu', seed=123)\n"
        "sys.stdout.write(b''.join(a.tobytes() for p in net.get_weights() for a in p).hex())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    here = ferrinet.NeuralNetwork([4, 16, 8, 3], activation="relu", seed=123)
    assert out.stdout == b"".join(a.tobytes() for p in here.get_weights() for a in p).hex()
    other = ferrinet.NeuralNetwork([4, 16, 8, 3], activation="relu", seed=124)
    assert not np.array_equal(here.get_weights()[0][0], other.get_weights()[0][0])
    # the same draws as docs/maths.md's SplitMix64 in the reference
    ref = reference.NeuralNetwork([4, 16, 8, 3], activation="relu", seed=123)
    for (W, b), (eW, eb) in zip(here.get_weights(), ref.get_weights()):
        assert W.tolist() == eW and b.tolist() == eb

    for activation, limit in (
        ("relu", math.sqrt(6.0 / 64)),  # He: sqrt(6 / n_in)
        ("leaky_relu", math.sqrt(6.0 / 64)),
        ("tanh", math.sqrt(6.0 / (64 + 48))),  # Glorot: sqrt(6 / (n_in + n_out))
        ("sigmoid", math.sqrt(6.0 / (64 + 48))),
    ):
        W = ferrinet.NeuralNetwork([64, 48, 1], activation=activation, seed=9).get_weights()[0][0]
        assert np.abs(W).max() <= limit and np.abs(W).max() > 0.99 * limit, activation
        assert abs(W.mean()) < 0.02 * limit
        assert W.std() == pytest.approx(limit / math.sqrt(3), rel=0.03)  # uniform's std
        assert len({row.tobytes() for row in W}) == 48  # every neuron different

    # why it matters: a layer started with equal neurons keeps them equal under training
    net = ferrinet.NeuralNetwork([2, 4, 1], activation="tanh", seed=9)
    net.set_weights([(np.full((4, 2), 0.5), np.zeros(4)), (np.full((1, 4), 0.5), np.zeros(1))])
    net.train(XOR_X, XOR_Y, epochs=50, learning_rate=0.5)
    W = net.get_weights()[0][0]
    assert np.all(W == W[0])
    seeded = ferrinet.NeuralNetwork([2, 4, 1], activation="tanh", seed=9)
    seeded.train(XOR_X, XOR_Y, epochs=50, learning_rate=0.5)
    assert len({row.tobytes() for row in seeded.get_weights()[0][0]}) == 4


def test_erratum_10_shapes_are_checked():
    """The article's zip truncates: too few or too many inputs, or targets of another length,
    give a number. ferrinet raises ValueError, and an empty batch is an error, not 0/0 = NaN."""

    def article_mean_squared_error(predictions, targets):  # the article's, translated
        return sum((p - t) ** 2 for p, t in zip(predictions, targets)) / len(predictions)

    assert article_mean_squared_error([1.0, 2.0], [1.0]) == 0.0  # silently truncated
    with pytest.raises(ZeroDivisionError):  # Rust's f64 gives 0.0 / 0.0 = NaN
        article_mean_squared_error([], [])
    # the article's backward runs on a sample with one input too many
    twin = reference.NeuralNetwork([2, 2, 2], activation="relu", seed=10)
    reference.article_backward(twin, [0.5, 0.5, 99.0], [1.0, 0.0], 0.1)

    net = ferrinet.NeuralNetwork([3, 4, 2], seed=10)
    for x in ([1.0, 2.0], [1.0, 2.0, 3.0, 4.0], [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]]):
        with pytest.raises(ValueError):
            net.forward(x)
    for y in ([1.0], [1.0, 2.0, 3.0]):
        with pytest.raises(ValueError):
            net.compute_loss([1.0, 2.0, 3.0], y)
        with pytest.raises(ValueError):
            net.backward([1.0, 2.0, 3.0], y, 0.1)
    with pytest.raises(ValueError):
        net.compute_loss(np.ones((2, 3)), np.ones((3, 2)))  # 2 samples, 3 target rows
    for call in (
        lambda: net.compute_loss(np.empty((0, 3)), np.empty((0, 2))),
        lambda: net.predict(np.empty((0, 3))),
        lambda: net.gradients(np.empty((0, 3)), np.empty((0, 2))),
        lambda: net.train(np.empty((0, 3)), np.empty((0, 2)), 1, 0.1),
    ):
        with pytest.raises(ValueError):
            call()


def test_erratum_11_one_contiguous_buffer_per_layer():
    """Row i of a layer's row-major (n_out, n_in) weight matrix is neuron i's weights, and
    get_weights() hands each layer's W back as one C-contiguous float64 array (a copy)."""
    net = ferrinet.NeuralNetwork([5, 4, 3], activation="relu", seed=11)
    weights = net.get_weights()
    for index, (layer, (W, b)) in enumerate(zip(net.layers, weights)):
        n_in, n_out = net.sizes[index], net.sizes[index + 1]
        assert W.shape == (n_out, n_in) and b.shape == (n_out,)
        assert W.dtype == np.float64 and W.flags.c_contiguous
        assert W.strides == (8 * n_in, 8)  # one block, rows one after the other
        assert len(layer.neurons) == n_out
        for i, neuron in enumerate(layer.neurons):
            assert np.array_equal(layer.weights[i], neuron.weights)
            assert np.array_equal(W[i], neuron.weights) and b[i] == neuron.bias
    # the arrays are copies: writing to them does not touch the model
    weights[0][0][0, 0] = 99.0
    assert net.get_weights()[0][0][0, 0] != 99.0
