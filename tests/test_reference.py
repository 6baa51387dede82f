"""The pure-Python reference on its own: forward, losses, gradients, initialisation, training,
the article's errata, and the checks (gradcheck, check_parity) run on the reference.

Nothing here needs the Rust extension: when ``ferrinet`` cannot be imported (not built yet),
``reference.py`` and ``checks.py`` are loaded straight from python/ferrinet/.
"""

import ast
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import HIDDEN, PACKAGE_DIR, load_modules, np_activation

reference, checks = load_modules("reference", "checks")
NeuralNetwork = reference.NeuralNetwork

OUTPUT_AND_LOSS = [(name, "mse") for name in HIDDEN] + [
    ("sigmoid", "binary_cross_entropy"),
    ("softmax", "cross_entropy"),
]
# every pairing; random_case cycles through the seven above (its case numbers are pinned below)
EVERY_OUTPUT_AND_LOSS = OUTPUT_AND_LOSS + [("exp", "poisson")]


# ----------------------------------------------------------------------------------------------
# The same maths, written independently with numpy
# ----------------------------------------------------------------------------------------------
def np_forward(net, X):
    """-> (z, a) of the output layer."""
    a = np.asarray(X, dtype=float)
    for (W, b), name in zip(net.get_weights(), net.activations):
        z = a @ np.asarray(W).T + np.asarray(b)
        a = np_activation(name, z)
    return z, a


def np_loss(loss, z, a, t):
    if loss == "mse":  # torch.nn.MSELoss()
        return np.mean((a - t) ** 2)
    # torch.nn.BCEWithLogitsLoss(): -[t log s + (1-t) log(1-s)]
    if loss == "binary_cross_entropy":
        s = 1.0 / (1.0 + np.exp(-z))
        return np.mean(-(t * np.log(s) + (1 - t) * np.log(1 - s)))
    # scikit-learn's half Poisson deviance: t log(t / exp(z)) - t + exp(z), 0 log 0 = 0
    if loss == "poisson":
        t_log_t = np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0)
        return np.mean(t_log_t - t * z - t + np.exp(z))
    # torch.nn.CrossEntropyLoss() with probability targets: -sum t log softmax(z), mean over rows
    mx = z.max(axis=1, keepdims=True)
    log_softmax = z - (mx + np.log(np.exp(z - mx).sum(axis=1, keepdims=True)))
    return np.mean(-(t * log_softmax).sum(axis=1))


def random_case(case):
    """A small random network, its inputs and targets; cycles through every hidden activation x
    output activation / loss pair (35 pairs, as 5 and 7 are coprime)."""
    rng = np.random.default_rng(1000 + case)
    hidden = HIDDEN[case % len(HIDDEN)]
    output, loss = OUTPUT_AND_LOSS[case % len(OUTPUT_AND_LOSS)]
    m = int(rng.integers(2, 4)) if loss == "cross_entropy" else int(rng.integers(1, 4))
    sizes = [int(rng.integers(1, 4))] + [int(rng.integers(1, 5)) for _ in range(1 + case % 2)] + [m]
    net = NeuralNetwork(sizes, activation=hidden, output_activation=output, loss=loss, seed=case)
    # nonzero biases, so that the bias path is exercised too
    net.set_weights([(W, rng.normal(scale=0.5, size=len(b))) for W, b in net.get_weights()])
    n = int(rng.integers(1, 5))
    X = rng.normal(size=(n, sizes[0]))
    if loss == "mse":
        Y = rng.normal(size=(n, m))
    elif loss == "binary_cross_entropy":
        Y = rng.uniform(size=(n, m))
    elif case % 2:
        Y = rng.integers(0, m, size=n)  # class indices
    else:
        # probability rows that need not sum to 1 (T_k != 1)
        Y = rng.uniform(size=(n, m))
    return net, X, Y


# ----------------------------------------------------------------------------------------------
# Forward
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output,loss", EVERY_OUTPUT_AND_LOSS)
def test_forward_matches_numpy(hidden, output, loss):
    net = NeuralNetwork(
        [3, 5, 4, 3], activation=hidden, output_activation=output, loss=loss, seed=7
    )
    X = np.random.default_rng(0).normal(size=(6, 3))
    _, expected = np_forward(net, X)
    np.testing.assert_allclose(np.array(net.forward(X.tolist())), expected, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(np.array(net.predict(X)), expected, rtol=1e-13, atol=1e-13)
    # a sample is a batch row
    assert net.forward(X[2].tolist()) == net.forward(X.tolist())[2]


def test_neuron_and_layer():
    neuron = reference.Neuron([0.5, -2.0], bias=0.25)
    # the pre-activation only
    assert neuron.forward([2.0, 1.0]) == 0.5 * 2.0 + -2.0 * 1.0 + 0.25
    # "sum from 0.0", left to right: (1e16 + 1.0) rounds back to 1e16, so the 1.0 is lost;
    # a compensated sum (math.fsum, Python 3.12's sum) would give 1.0
    assert reference.Neuron([1e16, 1.0, -1e16]).forward([1.0, 1.0, 1.0]) == 0.0
    with pytest.raises(ValueError, match="expected 2 inputs, got 3"):
        neuron.forward([1.0, 2.0, 3.0])  # the article's zip would truncate (erratum 10)

    net = NeuralNetwork([2, 3, 1], activation="relu", seed=3)
    layer = net.layers[0]
    assert (layer.n_inputs, layer.n_outputs, layer.activation) == (2, 3, "relu")
    assert layer.weights == [neuron.weights for neuron in layer.neurons]  # row i is neuron i
    assert layer.biases == [0.0, 0.0, 0.0]
    z, a = layer.forward([[1.0, -1.0], [0.5, 2.0]])
    assert a == [[max(v, 0.0) for v in row] for row in z]
    assert z[1] == [n.forward([0.5, 2.0]) for n in layer.neurons]


def test_sigmoid_and_softmax_are_stable():
    assert reference.sigmoid(1e4) == 1.0 and reference.sigmoid(-1e4) == 0.0
    assert reference.sigmoid(-745.0) > 0.0
    assert reference.softmax([1e4, 0.0, -1e4]) == [1.0, 0.0, 0.0]


# ----------------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("output,loss", EVERY_OUTPUT_AND_LOSS)
def test_loss_matches_numpy(output, loss):
    rng = np.random.default_rng(5)
    net = NeuralNetwork([3, 4, 3], activation="tanh", output_activation=output, loss=loss, seed=5)
    X = rng.normal(size=(5, 3))
    Y = rng.normal(size=(5, 3)) if loss == "mse" else rng.uniform(size=(5, 3))
    z, a = np_forward(net, X)
    assert net.compute_loss(X.tolist(), Y.tolist()) == pytest.approx(
        np_loss(loss, z, a, Y), rel=1e-13
    )


def test_poisson_closed_form_and_targets():
    """Half Poisson deviance: 0 where exp(z) = t, exp(z) alone where t = 0; targets >= 0."""
    net = NeuralNetwork([1, 2], loss="poisson", seed=0)
    assert net.activations == ["exp"]
    net.set_weights([([[1.0], [-0.5]], [0.0, 0.25])])  # z = (1, -0.25) at x = 1
    e = math.e
    assert net.compute_loss([1.0], [e, 0.0]) == pytest.approx(math.exp(-0.25) / 2, rel=1e-15)
    assert net.compute_loss([1.0], [e, math.exp(-0.25)]) == pytest.approx(0.0, abs=1e-15)
    t = [2.0, 3.0]
    expected = (
        sum(tk * math.log(tk) - tk * z + math.exp(z) - tk for tk, z in zip(t, [1.0, -0.25])) / 2
    )
    assert net.compute_loss([1.0], t) == pytest.approx(expected, rel=1e-14)
    # the seed is (exp(z) - t) / (n m): the exp's derivative cancels
    ((dW, db),) = net.gradients([[1.0]], [t])
    assert db == pytest.approx([(e - 2.0) / 2, (math.exp(-0.25) - 3.0) / 2], rel=1e-15)
    assert reference.poisson_deviance(1e-300, 0.0) == 1.0
    with pytest.raises(ValueError, match="not >= 0"):
        net.compute_loss([1.0], [1.0, -0.5])
    with pytest.raises(ValueError, match="requires output_activation 'exp'"):
        NeuralNetwork([1, 2], output_activation="identity", loss="poisson")


@pytest.mark.parametrize("case", range(10))
def test_gradcheck_poisson_networks(case):
    rng = np.random.default_rng(3000 + case)
    hidden = HIDDEN[case % len(HIDDEN)]
    m = int(rng.integers(1, 4))
    sizes = [int(rng.integers(1, 4))] + [int(rng.integers(1, 5)) for _ in range(1 + case % 2)] + [m]
    net = NeuralNetwork(sizes, activation=hidden, loss="poisson", seed=case)
    net.set_weights([(W, rng.normal(scale=0.5, size=len(b))) for W, b in net.get_weights()])
    n = int(rng.integers(1, 5))
    X = rng.normal(size=(n, sizes[0]))
    Y = rng.poisson(1.5, size=(n, m)).astype(float)  # counts, zeros included
    report = checks.gradcheck(net, X, Y, eps=1e-5)
    assert report.passed(1e-6), f"{net}\n{report}"


def test_mse_closed_form():
    net = NeuralNetwork([1, 2], loss="mse", seed=0)
    # identity output: a = (x, 0.5 - x)
    net.set_weights([([[1.0], [-1.0]], [0.0, 0.5])])
    # ((3 - 1)**2 + (-2.5 - 0)**2 + (-1 - 0)**2 + (1.5 - 2)**2) / (n*m = 4)
    loss = net.compute_loss([[3.0], [-1.0]], [[1.0, 0.0], [0.0, 2.0]])
    assert loss == (4.0 + 6.25 + 1.0 + 0.25) / 4


def test_binary_cross_entropy_is_stable_at_large_logits():
    net = NeuralNetwork([1, 2], loss="binary_cross_entropy", seed=0)
    net.set_weights([([[1e4], [-1e4]], [0.0, 0.0])])  # logits (1e4, -1e4) for x = 1
    assert net.activations == ["sigmoid"]
    # wrong on both: max(z,0) - z t + log1p(exp(-|z|)) = 1e4 each; the naive log(1 - sigmoid) is -inf
    assert net.compute_loss([1.0], [0.0, 1.0]) == 1e4
    assert net.compute_loss([1.0], [1.0, 0.0]) == 0.0
    assert net.compute_loss([1.0], [0.5, 0.5]) == 5e3
    for dW, db in net.gradients([1.0], [0.0, 1.0]):
        assert all(math.isfinite(v) for v in np.ravel(dW)) and all(math.isfinite(v) for v in db)
    # moderate logits: the closed form -[t log s + (1-t) log(1-s)]
    net.set_weights([([[0.3], [-1.7]], [0.2, 0.1])])
    z = np.array([[0.3 * 2.0 + 0.2, -1.7 * 2.0 + 0.1]])
    expected = np_loss("binary_cross_entropy", z, None, np.array([[0.25, 1.0]]))
    assert net.compute_loss([2.0], [0.25, 1.0]) == pytest.approx(expected, rel=1e-14)


def test_cross_entropy_is_stable_at_large_logits():
    net = NeuralNetwork([1, 3], loss="cross_entropy", seed=0)
    # logits (1e4, 0, -1e4) for x = 1
    net.set_weights([([[1e4], [0.0], [-1e4]], [0.0, 0.0, 0.0])])
    assert net.activations == ["softmax"]
    assert net.compute_loss([[1.0], [1.0]], [0, 2]) == (0.0 + 2e4) / 2
    assert net.compute_loss([1.0], 1) == 1e4
    assert net.compute_loss([1.0], [0.5, 0.0, 0.5]) == 0.5 * 0.0 + 0.5 * 2e4
    for dW, db in net.gradients([[1.0], [1.0]], [0, 2]):
        assert all(math.isfinite(v) for v in np.ravel(dW)) and all(math.isfinite(v) for v in db)


def test_cross_entropy_class_indices_are_one_hot_rows():
    net = NeuralNetwork([4, 5, 3], activation="tanh", loss="cross_entropy", seed=11)
    X = np.random.default_rng(11).normal(size=(4, 4))
    indices = [2, 0, 1, 2]
    one_hot = np.eye(3)[indices]
    assert net.compute_loss(X, indices) == net.compute_loss(X, one_hot)
    assert net.compute_loss(X, np.array(indices)) == net.compute_loss(X, one_hot.tolist())
    assert net.gradients(X, indices) == net.gradients(X, one_hot)
    assert net.compute_loss(X[1], 0) == net.compute_loss(X[1], [1.0, 0.0, 0.0])


# ----------------------------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", range(50))
def test_gradcheck_random_networks(case):
    net, X, Y = random_case(case)
    # eps = 1e-5: with O(1) losses, eps = 1e-6 puts the roundoff noise (~1e-10) at the tol for
    # gradients near the floor (see gradcheck's docstring)
    report = checks.gradcheck(net, X, Y, eps=1e-5)
    assert report.passed(1e-6), f"{net}\n{report}"


def test_gradcheck_defaults_on_a_small_loss():
    net = NeuralNetwork([3, 4, 2], activation="tanh", seed=1)
    X = np.random.default_rng(1).normal(size=(5, 3))
    Y = np.array(net.predict(X)) + 0.1  # loss 0.01
    report = checks.gradcheck(net, X, Y)
    assert report.passed(), str(report)
    assert len(report.entries) == 4 and report.eps == 1e-6
    assert report.floor == checks.default_floor(report.loss)
    assert "passed" in str(report)


def test_gradcheck_leaves_the_network_alone():
    net, X, Y = random_case(3)
    before = net.get_weights()
    checks.gradcheck(net, X, Y)
    assert net.get_weights() == before


def test_gradcheck_fails_for_the_article():
    # [2, 2, 2]: widths equal and the last width <= the number of layers, so the article's code
    # runs to the end (erratum 2 and erratum 5 would raise IndexError otherwise)
    net = NeuralNetwork([2, 2, 2], activation="relu", loss="mse", seed=4)
    rng = np.random.default_rng(4)
    X, Y = rng.uniform(0.5, 1.5, size=(4, 2)), rng.normal(size=(4, 2))
    report = checks.gradcheck(net, X, Y, gradients=reference.article_gradients)
    assert not report.passed()
    assert report.max_rel_error > 0.1
    assert "FAILED" in str(report) and "<-" in str(report)
    assert checks.gradcheck(net, X, Y).passed()  # the same network, correct gradients


def test_gradcheck_fails_for_slightly_wrong_gradients():
    net, X, Y = random_case(7)

    def one_percent_off(net, X, Y):
        return [(np.asarray(dW) * 1.01, db) for dW, db in net.gradients(X, Y)]

    report = checks.gradcheck(net, X, Y, gradients=one_percent_off)
    assert not report.passed()
    assert report.max_rel_error == pytest.approx(0.01 / 1.01, rel=1e-3)
    assert report.worst.param == "weight"


def test_gradients_do_not_change_the_model_and_backward_steps_along_them():
    net, X, Y = random_case(12)
    before = net.get_weights()
    loss_before = net.compute_loss(X, Y)
    grads = net.gradients(X, Y)
    assert net.get_weights() == before
    # backward returns the loss of the forward pass before the step
    assert net.backward(X, Y, 0.1) == loss_before
    for (W0, b0), (W1, b1), (dW, db) in zip(before, net.get_weights(), grads):
        assert W1 == [[w - 0.1 * g for w, g in zip(wr, gr)] for wr, gr in zip(W0, dW)]
        assert b1 == [v - 0.1 * g for v, g in zip(b0, db)]


def test_batch_gradient_is_the_mean_of_sample_gradients():
    net, X, Y = random_case(5)
    batch = net.gradients(X, Y)
    samples = [net.gradients(X[k : k + 1], Y[k : k + 1]) for k in range(len(X))]
    for index, (dW, db) in enumerate(batch):
        np.testing.assert_allclose(
            dW, np.mean([s[index][0] for s in samples], axis=0), rtol=1e-12, atol=1e-15
        )
        np.testing.assert_allclose(
            db, np.mean([s[index][1] for s in samples], axis=0), rtol=1e-12, atol=1e-15
        )


# ----------------------------------------------------------------------------------------------
# The article's backward pass (docs/article-errata.md)
# ----------------------------------------------------------------------------------------------
def test_article_backward_raises_when_widths_differ():
    net = NeuralNetwork([2, 8, 1], activation="relu", seed=0)
    # erratum 2: the error vector is sized by the output (1), then indexed by 8 inputs
    with pytest.raises(IndexError):
        reference.article_backward(net, [0.5, -0.5], [1.0], 0.1)
    with pytest.raises(IndexError):
        reference.article_gradients(NeuralNetwork([2, 8, 1], seed=0), [[0.5, -0.5]], [[1.0]])


def test_article_backward_raises_on_equal_widths_too():
    # erratum 5: self.layers[len(layer.neurons) - 1] is self.layers[2] of a 2-layer network
    net = NeuralNetwork([3, 3, 3], activation="relu", seed=0)
    with pytest.raises(IndexError):
        reference.article_backward(net, [0.5, 0.2, 0.1], [1.0, 0.0, 0.5], 0.1)


def test_article_backward_uses_the_output_instead_of_the_hidden_activation():
    """Erratum 1, by hand: [2, 2, 2], relu hidden, identity output, mse; everything positive so
    that the hard-coded ReLU test (erratum 6) does not get in the way."""
    net = NeuralNetwork([2, 2, 2], activation="relu", loss="mse", seed=0)
    net.set_weights(
        [([[0.5, 0.2], [0.1, 0.4]], [0.1, 0.0]), ([[0.3, 0.6], [0.7, 0.2]], [0.0, 0.1])]
    )
    x, t = [1.0, 2.0], [0.0, 0.5]
    h = [
        0.5 * 1.0 + 0.2 * 2.0 + 0.1,
        0.1 * 1.0 + 0.4 * 2.0 + 0.0,
    ]  # hidden activation (1.0, 0.9)
    o = net.forward(x)  # output (0.84, 0.98)
    assert o == pytest.approx([0.3 * h[0] + 0.6 * h[1], 0.7 * h[0] + 0.2 * h[1] + 0.1], rel=1e-15)

    # correct: dL/dz = (2 / m) (o - t) = (o - t) for m = 2, and dW[i][j] = (o_i - t_i) * h_j
    dW, _ = net.gradients(x, t)[1]
    np.testing.assert_allclose(
        dW, [[(o[i] - t[i]) * h[j] for j in range(2)] for i in range(2)], rtol=1e-14
    )

    # the article: W[i][j] += lr * (t_i - o_i) * output_j, i.e. a "gradient" (o_i - t_i) * o_j
    learning_rate = 1e-3
    W_before = net.get_weights()[1][0]
    reference.article_backward(net, x, t, learning_rate)  # mutates net in place
    W_after = net.get_weights()[1][0]
    implied = [
        [(W_before[i][j] - W_after[i][j]) / learning_rate for j in range(2)] for i in range(2)
    ]
    np.testing.assert_allclose(
        implied, [[(o[i] - t[i]) * o[j] for j in range(2)] for i in range(2)], rtol=1e-9
    )
    assert not np.allclose(implied, dW, rtol=1e-3)


def test_article_gradients_does_not_modify_the_network():
    net = NeuralNetwork([2, 2, 2], seed=1)
    before = net.get_weights()
    grads = reference.article_gradients(net, [[0.1, 0.2], [0.3, -0.4]], [[1.0, 0.0], [0.0, 1.0]])
    assert net.get_weights() == before
    assert [(len(dW), len(dW[0]), len(db)) for dW, db in grads] == [
        (2, 2, 2),
        (2, 2, 2),
    ]


# ----------------------------------------------------------------------------------------------
# Initialisation
# ----------------------------------------------------------------------------------------------
def test_splitmix64_known_answers():
    # splitmix64.c (Vigna), seed 1234567
    rng = reference.SplitMix64(1234567)
    assert [rng.next_u64() for _ in range(5)] == [
        6457827717110365317,
        3203168211198807973,
        9817491932198370423,
        4593380528125082431,
        16408922859458223821,
    ]
    rng = reference.SplitMix64(1234567)
    assert rng.uniform() == (6457827717110365317 >> 11) / 2.0**53
    assert all(0.0 <= rng.uniform() < 1.0 for _ in range(1000))
    assert reference.SplitMix64(2**64 - 1).next_u64() < 2**64
    with pytest.raises(ValueError):
        reference.SplitMix64(2**64)


def test_weights_follow_docs_maths():
    # relu hidden, identity output
    net = NeuralNetwork([3, 4, 2], activation="relu", seed=42)
    rng = reference.SplitMix64(42)
    limits = [
        math.sqrt(6.0 / 3),
        math.sqrt(6.0 / (4 + 2)),
    ]  # He for relu, Glorot for identity
    for (W, b), (n_in, n_out), limit in zip(net.get_weights(), [(3, 4), (4, 2)], limits):
        assert W == [
            [limit * (2.0 * rng.uniform() - 1.0) for _ in range(n_in)] for _ in range(n_out)
        ]
        assert b == [0.0] * n_out


@pytest.mark.parametrize("activation", HIDDEN)
def test_init_limits(activation):
    net = NeuralNetwork([60, 50, 40], activation=activation, output_activation="tanh", seed=3)
    for (W, _), (n_in, n_out), name in zip(
        net.get_weights(), [(60, 50), (50, 40)], [activation, "tanh"]
    ):
        limit = (
            math.sqrt(6.0 / n_in)
            if name in ("relu", "leaky_relu")
            else math.sqrt(6.0 / (n_in + n_out))
        )
        assert reference.init_limit(name, n_in, n_out) == limit
        W = np.array(W)
        assert np.abs(W).max() <= limit and np.abs(W).max() > 0.98 * limit
        assert abs(W.mean()) < 0.05 * limit


def test_seeds():
    assert (
        NeuralNetwork([3, 5, 2], seed=9).get_weights()
        == NeuralNetwork([3, 5, 2], seed=9).get_weights()
    )
    assert (
        NeuralNetwork([3, 5, 2], seed=9).get_weights()
        != NeuralNetwork([3, 5, 2], seed=10).get_weights()
    )
    random_seed = NeuralNetwork([3, 5, 2], seed=None).seed
    assert NeuralNetwork([3, 5, 2], seed=random_seed).seed == random_seed
    NeuralNetwork([3, 2], seed=2**64 - 1)
    for bad in (-1, 2**64):
        with pytest.raises(ValueError):
            NeuralNetwork([3, 2], seed=bad)


# ----------------------------------------------------------------------------------------------
# Construction and validation
# ----------------------------------------------------------------------------------------------
def test_architecture_and_defaults():
    net = NeuralNetwork([4, 6, 5, 3], activation=["tanh", "linear"], loss="cross_entropy")
    assert net.sizes == [4, 6, 5, 3]
    assert net.activations == ["tanh", "identity", "softmax"]
    assert net.loss == "cross_entropy"
    assert net.seed == 0 and net.n_parameters == (4 + 1) * 6 + (6 + 1) * 5 + (5 + 1) * 3
    assert NeuralNetwork([2, 1], loss="binary_cross_entropy").activations == ["sigmoid"]
    assert NeuralNetwork([2, 3, 1]).activations == ["relu", "identity"]
    assert NeuralNetwork([2, 3, 1], output_activation="tanh").activations == [
        "relu",
        "tanh",
    ]
    assert "NeuralNetwork(sizes=[2, 3, 1]" in repr(NeuralNetwork([2, 3, 1]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sizes": [3]}, "sizes"),
        ({"sizes": [3, 0, 1]}, "sizes"),
        ({"sizes": [3, 2.0]}, "sizes"),
        ({"activation": "softmax"}, "output"),
        (
            {"activation": "gelu"},
            "valid: exp, identity, leaky_relu, linear, relu, sigmoid, softmax, tanh",
        ),
        ({"activation": ["relu", "tanh"]}, "expected 1 hidden activations"),
        ({"output_activation": "softmax"}, "mse"),
        ({"loss": "hinge"}, "valid: binary_cross_entropy, cross_entropy, mse, poisson"),
        (
            {"loss": "binary_cross_entropy", "output_activation": "identity"},
            "requires output_activation 'sigmoid'",
        ),
        (
            {"loss": "cross_entropy", "output_activation": "sigmoid"},
            "requires output_activation 'softmax'",
        ),
    ],
)
def test_invalid_construction(kwargs, message):
    kwargs = {"sizes": [3, 4, 2], **kwargs}
    with pytest.raises(ValueError, match=message):
        NeuralNetwork(**kwargs)


def test_shapes_are_checked_never_truncated():
    net = NeuralNetwork([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match="expected 3 values, got 2"):
        net.forward([1.0, 2.0])
    with pytest.raises(ValueError, match="expected 3 values, got 4"):
        net.forward([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]])
    with pytest.raises(ValueError):
        net.forward([])
    with pytest.raises(ValueError, match="expected 2 values, got 1"):
        net.compute_loss([1.0, 2.0, 3.0], [1.0])
    with pytest.raises(ValueError, match=r"expected targets of shape \(2, 2\)"):
        # a 1-D Y is a column only when m == 1
        net.compute_loss([[1.0, 2.0, 3.0]] * 2, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"expected targets of shape \(2, 2\)"):
        net.compute_loss([[1.0, 2.0, 3.0]] * 2, [[1.0, 2.0]] * 3)
    with pytest.raises(ValueError, match="predict"):
        net.predict([1.0, 2.0, 3.0])

    column = NeuralNetwork([2, 1], seed=0)
    assert column.compute_loss([[1.0, 2.0], [3.0, 4.0]], [0.5, 1.5]) == column.compute_loss(
        [[1.0, 2.0], [3.0, 4.0]], [[0.5], [1.5]]
    )
    assert column.compute_loss([1.0, 2.0], 0.5) == column.compute_loss([1.0, 2.0], [0.5])

    bce = NeuralNetwork([2, 1], loss="binary_cross_entropy", seed=0)
    with pytest.raises(ValueError, match=r"not in \[0.0, 1.0\]"):
        bce.compute_loss([[1.0, 2.0]], [[1.5]])
    with pytest.raises(ValueError, match="finite"):
        column.compute_loss([[1.0, 2.0]], [[math.nan]])

    ce = NeuralNetwork([2, 3], loss="cross_entropy", seed=0)
    with pytest.raises(ValueError, match=r"class index 3 of sample 0 is not in \[0, 3\)"):
        ce.compute_loss([[1.0, 2.0]], [3])
    with pytest.raises(ValueError, match="integer class indices"):
        ce.compute_loss([[1.0, 2.0]], [1.0])
    with pytest.raises(ValueError, match="expected targets for 2 samples, got 1"):
        ce.compute_loss([[1.0, 2.0]] * 2, [1])


def test_get_set_weights_and_copy():
    net = NeuralNetwork([2, 3, 1], seed=0)
    weights = net.get_weights()
    weights[0][0][0][0] = 99.0  # a copy: the network is unchanged
    assert net.get_weights()[0][0][0][0] != 99.0
    with pytest.raises(ValueError, match=r"layer 1: expected W of shape \(1, 3\)"):
        net.set_weights([weights[0], ([[1.0, 2.0, 3.0]] * 2, [0.0])])
    with pytest.raises(ValueError, match="layer 0: b: expected 3 values"):
        net.set_weights([(weights[0][0], [0.0]), weights[1]])
    with pytest.raises(ValueError, match="expected"):
        net.set_weights(weights[:1])
    assert net.get_weights()[0][0][0][0] != 99.0  # a failed set_weights changes nothing
    # ndarrays are fine
    net.set_weights([(np.asarray(W), np.asarray(b)) for W, b in weights])
    assert net.get_weights() == weights

    twin = net.copy()
    assert twin.get_weights() == net.get_weights() and twin.activations == net.activations
    twin.backward([1.0, 2.0], [3.0], 0.1)
    assert twin.get_weights() != net.get_weights()


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
XOR_X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
XOR_Y = [0.0, 1.0, 1.0, 0.0]


def test_train_learns_xor():
    net = NeuralNetwork([2, 8, 1], activation="tanh", loss="mse", seed=0)
    losses = net.train(XOR_X, XOR_Y, epochs=500, learning_rate=0.1)
    assert len(losses) == 500
    assert losses[-1] < 0.01 < losses[0]
    assert [round(a[0]) for a in net.predict(XOR_X)] == [0, 1, 1, 0]


def test_train_is_per_sample_backward_in_order():
    net = NeuralNetwork([2, 4, 1], activation="sigmoid", loss="binary_cross_entropy", seed=2)
    twin = net.copy()
    losses = net.train(np.array(XOR_X), np.array(XOR_Y), epochs=3, learning_rate=0.5)
    expected = []
    for _ in range(3):
        total = 0.0
        for x, y in zip(XOR_X, XOR_Y):
            total += twin.backward(x, [y], 0.5)
        expected.append(total / 4)
    assert losses == expected
    assert net.get_weights() == twin.get_weights()


def test_train_cross_entropy_reduces_loss():
    rng = np.random.default_rng(8)
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    labels = np.arange(30) % 3
    X = centres[labels] + rng.normal(scale=0.5, size=(30, 2))
    net = NeuralNetwork([2, 6, 3], activation="relu", loss="cross_entropy", seed=8)
    losses = net.train(X, labels, epochs=30, learning_rate=0.05)
    assert losses[-1] < 0.25 * losses[0]
    predicted = np.argmax(net.predict(X), axis=1)
    assert (predicted == labels).mean() > 0.9


# ----------------------------------------------------------------------------------------------
# check_parity, run on the reference against itself
# ----------------------------------------------------------------------------------------------
def test_check_parity_of_the_reference_with_itself():
    net, X, Y = random_case(6)  # cross_entropy, probability rows
    before = net.get_weights()
    report = checks.check_parity(net, X, Y, steps=25, learning_rate=0.1)
    assert report.passed() and report.bit_identical
    assert report.first_bit_difference is None and report.first_failure is None
    assert report.max_rel_diff == 0.0 and report.max_rel_diff_after_step1 == 0.0
    assert report.steps == 25 and len(report.net_losses) == 25
    assert net.get_weights() == before  # trained a copy
    assert "parity passed" in str(report)

    net, X, Y = random_case(13)  # cross_entropy, class indices
    assert checks.check_parity(net, X, Y, steps=10).bit_identical


class _SlightlyFasterSGD(NeuralNetwork):
    """The reference with a learning rate 1e-9 too large: a stand-in for a diverging core."""

    def backward(self, x, y, learning_rate):
        return super().backward(x, y, learning_rate * (1.0 + 1e-9))


def test_check_parity_finds_the_first_difference():
    base, X, Y = random_case(0)  # mse
    net = _SlightlyFasterSGD(base.sizes, base.activations[:-1], base.activations[-1], base.loss)
    net.set_weights(base.get_weights())
    report = checks.check_parity(net, X, Y, steps=5)
    assert not report.passed() and not report.bit_identical
    first = report.first_bit_difference
    # the loss of step 1 still agrees; the weights after it do not
    assert (first.step, first.quantity) == (1, "weight")
    assert report.first_failure.step == 1
    assert 1e-12 < report.max_rel_diff_after_step1 < 1e-8
    assert "FAILED" in str(report) and "step 1" in str(report)
    assert checks.check_parity(net, X, Y, steps=5, rtol=1e-6, rtol_first_step=1e-6).passed()
    # the first step has its own, tighter tolerance: loosening only the later one is not enough
    assert not checks.check_parity(net, X, Y, steps=5, rtol=1e-6).passed()


# ----------------------------------------------------------------------------------------------
# No numpy in the reference's maths
# ----------------------------------------------------------------------------------------------
def test_reference_imports_no_numpy():
    tree = ast.parse((PACKAGE_DIR / "reference.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert not any(
        name.split(".")[0] in ("numpy", "ferrinet") or name == "" for name in imported
    ), imported


def test_reference_runs_with_numpy_blocked():
    program = f"""
import importlib.util, sys
sys.modules["numpy"] = None  # any "import numpy" now raises ImportError
spec = importlib.util.spec_from_file_location("reference", {str(PACKAGE_DIR / "reference.py")!r})
reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference)
net = reference.NeuralNetwork([2, 4, 1], activation="tanh", seed=0)
losses = net.train({XOR_X!r}, {XOR_Y!r}, epochs=20, learning_rate=0.1)
assert losses[-1] < losses[0]
net.gradients({XOR_X!r}, {XOR_Y!r})
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
