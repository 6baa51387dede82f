"""ferrinet learns: XOR, a sine, two moons and handwritten digits (``ferrinet.datasets``).

All training is ``NeuralNetwork.train``: the article's per-sample SGD, samples in order. The
settings were chosen by trying a few on more seeds than are tested here (the rates in each
docstring); the thresholds are the task's, not tuned to the seeds.
"""

import ferrinet
import numpy as np
import pytest
from ferrinet import datasets


def r_squared(y, prediction):
    """Coefficient of determination: 1 - SS_res / SS_tot."""
    y = np.asarray(y, dtype=float)
    return 1.0 - np.sum((y - prediction) ** 2) / np.sum((y - y.mean()) ** 2)


def test_xor_every_seed():
    """[2, 8, 1], tanh hidden, sigmoid output, binary cross-entropy, 1,000 epochs at learning
    rate 0.2: all four points right for >= 19 of 20 seeds (measured: 20 of 20; 995 of seeds
    0-999). Tried first: relu + mse at 0.1 for 500 epochs (85 of 100 seeds), tanh + mse at 0.1
    (93 of 100); tanh + BCE at 0.5 for 500 epochs ends on 355 of 1,000 seeds with the same
    output for all four points and the epoch loss stuck at 0.76 (seed 0 checked: bit-identical
    with the reference and gradcheck passes, so the dynamics of too large a step, not a bug)."""
    X, y = datasets.xor()
    solved = 0
    for seed in range(20):
        net = ferrinet.NeuralNetwork(
            [2, 8, 1], activation="tanh", loss="binary_cross_entropy", seed=seed
        )
        assert net.activations == ["tanh", "sigmoid"]
        losses = net.train(X, y, epochs=1000, learning_rate=0.2)
        assert losses[-1] < losses[0]
        predicted = (net.predict(X) > 0.5).astype(float)
        solved += bool(np.array_equal(predicted, y))
    assert solved >= 19, f"XOR solved for {solved} of 20 seeds"


@pytest.mark.parametrize("seed", range(3))
def test_sine_regression_generalises(seed):
    """y = sin(x) + N(0, 0.1**2) on [-pi, pi], 300 training and 100 held-out points;
    [1, 16, 1] tanh, identity output, mse, 200 epochs at 0.02. R^2 on the held-out points
    >= 0.95 (the noise alone caps it at about 1 - 0.01 / 0.5 = 0.98; measured 0.968-0.979 on
    5 seeds; 32 relu units reached only 0.67 and -0.01 on 2 of 5 seeds, so not chosen)."""
    X, y = datasets.sine(n=400, noise=0.1, seed=seed)
    X_train, X_test, y_train, y_test = datasets.train_test_split(X, y, test_size=0.25, seed=seed)
    net = ferrinet.NeuralNetwork([1, 16, 1], activation="tanh", loss="mse", seed=seed)
    net.train(X_train, y_train, epochs=200, learning_rate=0.02)
    assert r_squared(y_test, net.predict(X_test)) >= 0.95
    assert np.min(net.predict(X_test)) < -0.8  # the identity output reaches the troughs


@pytest.mark.parametrize("seed", range(3))
def test_moons_classification(seed):
    """Two moons with noise 0.15, 300 train / 100 test (stratified, standardised); [2, 16, 2]
    tanh, softmax + cross-entropy on class indices, 300 epochs at 0.02. Test accuracy >= 0.95
    (measured 0.98-1.00 on 10 seeds; at noise 0.2 some test sets of 100 fall below 0.95
    whatever the model)."""
    X, labels = datasets.moons(n=400, noise=0.15, seed=seed)
    X_train, X_test, y_train, y_test = datasets.train_test_split(
        X, labels, test_size=0.25, seed=seed, stratify=True
    )
    X_train, X_test = datasets.standardize(X_train, X_test)
    net = ferrinet.NeuralNetwork([2, 16, 2], activation="tanh", loss="cross_entropy", seed=seed)
    net.train(X_train, y_train, epochs=300, learning_rate=0.02)
    accuracy = np.mean(np.argmax(net.predict(X_test), axis=1) == y_test)
    assert accuracy >= 0.95


def test_digits_classification():
    """UCI digits (1,797 8x8 images), stratified 75/25 split, standardised with the training
    statistics; [64, 32, 10] relu, cross-entropy, 20 epochs at 0.01. Test accuracy >= 0.95
    (measured 0.971-0.978 on 3 split seeds, tanh likewise)."""
    X, labels = datasets.digits()
    X_train, X_test, y_train, y_test = datasets.train_test_split(
        X, labels, test_size=0.25, seed=0, stratify=True
    )
    # stratified: every digit keeps its share of the test set, to within one image
    assert np.abs(np.bincount(y_test) - 0.25 * np.bincount(labels)).max() <= 1.0
    X_train, X_test = datasets.standardize(X_train, X_test)
    net = ferrinet.NeuralNetwork([64, 32, 10], activation="relu", loss="cross_entropy", seed=0)
    losses = net.train(X_train, y_train, epochs=20, learning_rate=0.01)
    assert losses[-1] < 0.1 * losses[0]
    accuracy = np.mean(np.argmax(net.predict(X_test), axis=1) == y_test)
    assert accuracy >= 0.95
