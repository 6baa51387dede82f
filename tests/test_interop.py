"""ferrinet.interop: from_sklearn / to_sklearn move an MLP between scikit-learn and ferrinet.

A network built from a fitted scikit-learn MLP must compute the same outputs: max abs
difference < 1e-12 in float64 (measured: <= 3e-15) for every hidden activation scikit-learn
has, for binary, multiclass and multilabel classifiers and for regressors, whichever solver
fitted them.
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import ferrinet  # noqa: E402
import ferrinet.sklearn as fsk  # noqa: E402
from ferrinet.interop import from_sklearn, to_sklearn  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

rng = np.random.RandomState(0)
X = rng.randn(200, 6)
TARGETS = {
    "binary": (X[:, 0] > 0).astype(int),
    "multiclass": (X[:, 0] > 0).astype(int) + (X[:, 1] > 0),
    "multilabel": (X[:, :3] > 0).astype(int),
    "regression": X[:, 0] ** 2,
    "regression2": X[:, :2] ** 2,
}


def _fit(kind, **params):
    Model = MLPRegressor if kind.startswith("regression") else MLPClassifier
    # one BLAS thread: scikit-learn's small products are several times slower with two here
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")  # ConvergenceWarning: 30 epochs are not the point
        return Model(hidden_layer_sizes=(7, 5), max_iter=30, random_state=0, **params).fit(
            X, TARGETS[kind]
        )


def _reference(model, kind):
    """What net.predict(X) must equal (see the table in ferrinet.interop)."""
    if kind == "binary":
        return model.predict_proba(X)[:, 1:]
    if kind.startswith("regression"):
        return model.predict(X).reshape(len(X), -1)
    return model.predict_proba(X)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("kind", list(TARGETS))
def test_from_sklearn_predicts_the_same(kind, activation, solver):
    model = _fit(kind, activation=activation, solver=solver)
    net = from_sklearn(model)
    assert isinstance(net, ferrinet.NeuralNetwork)
    assert net.sizes == [6, 7, 5, model.n_outputs_] and net.dtype == "float64"
    expected_act = {"logistic": "sigmoid"}.get(activation, activation)
    assert net.activations[:-1] == [expected_act, expected_act]
    out = net.predict(X)
    assert out.shape == _reference(model, kind).shape
    assert np.abs(out - _reference(model, kind)).max() < 1e-12
    for layer, coef, intercept in zip(net.layers, model.coefs_, model.intercepts_):
        np.testing.assert_array_equal(layer.weights, coef.T)
        np.testing.assert_array_equal(layer.biases, intercept)


@pytest.mark.parametrize("kind", list(TARGETS))
def test_to_sklearn_round_trip(kind):
    model = _fit(kind, activation="tanh")
    net = from_sklearn(model)
    classes = None if kind.startswith("regression") or kind == "multilabel" else model.classes_
    back = to_sklearn(net, classes=classes)
    assert type(back) is type(model)
    assert back.out_activation_ == model.out_activation_ and back.n_outputs_ == model.n_outputs_
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    if hasattr(model, "predict_proba"):
        np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))
        assert back.score(X, TARGETS[kind]) == model.score(X, TARGETS[kind])
    # and back again: the same network
    again = from_sklearn(back)
    for a, b in zip(again.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_to_sklearn_two_class_softmax_becomes_one_logistic_unit():
    net = ferrinet.NeuralNetwork([6, 5, 2], activation="relu", loss="cross_entropy", seed=3)
    model = to_sklearn(net, classes=["no", "yes"])
    assert model.out_activation_ == "logistic" and model.n_outputs_ == 1
    # softmax(z)[1] = sigmoid(z1 - z0): equal to rounding (measured 1.1e-16)
    np.testing.assert_allclose(model.predict_proba(X), net.predict(X), rtol=0, atol=1e-14)
    np.testing.assert_array_equal(
        model.predict(X), np.where(net.predict(X)[:, 1] > 0.5, "yes", "no")
    )


def test_float32_models_give_float32_networks():
    model = _fit("multiclass")
    model.coefs_ = [c.astype(np.float32) for c in model.coefs_]
    model.intercepts_ = [b.astype(np.float32) for b in model.intercepts_]
    net = from_sklearn(model)
    assert net.dtype == "float32"
    # float32 products: ~1e-7 relative
    np.testing.assert_allclose(net.predict(X), model.predict_proba(X.astype(np.float32)), atol=1e-6)
    assert from_sklearn(model, dtype="float64").dtype == "float64"


def test_ferrinet_estimators_are_accepted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = fsk.MLPClassifier(
            hidden_layer_sizes=(6,), activation=["leaky_relu"], max_iter=10, random_state=0
        ).fit(X, TARGETS["multiclass"])
    net = from_sklearn(est)
    assert net is not est.network_  # a copy
    np.testing.assert_array_equal(net.predict(X), est.predict_proba(X))
    # scikit-learn has no leaky_relu: to_sklearn refuses it with the reason
    with pytest.raises(ValueError, match="no hidden activation 'leaky_relu'"):
        to_sklearn(est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = fsk.MLPClassifier(hidden_layer_sizes=(6,), max_iter=10, random_state=0).fit(
            X, np.array(["a", "b", "c"])[TARGETS["multiclass"]]
        )
    model = to_sklearn(est)  # takes classes_ from the estimator
    np.testing.assert_array_equal(model.predict(X), est.predict(X))
    # scikit-learn's forward pass vs ferrinet's: equal to rounding (measured 2.2e-16)
    np.testing.assert_allclose(model.predict_proba(X), est.predict_proba(X), rtol=0, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_poisson_regressor_goes_both_ways(activation):
    """MLPRegressor(loss="poisson") (exp output) <-> a ferrinet exp / poisson network."""
    y = np.random.RandomState(1).poisson(np.exp(0.5 * X[:, 0]))
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        model = MLPRegressor(
            loss="poisson",
            hidden_layer_sizes=(7, 5),
            activation=activation,
            max_iter=30,
            random_state=0,
        ).fit(X, y)
    assert model.out_activation_ == "exp"
    net = from_sklearn(model)
    assert (net.activations[-1], net.loss) == ("exp", "poisson")
    out = net.predict(X)
    np.testing.assert_allclose(out, model.predict(X).reshape(-1, 1), rtol=1e-12, atol=0)
    back = to_sklearn(net)
    assert type(back) is MLPRegressor and back.loss == "poisson"
    assert back.out_activation_ == "exp"
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


def test_errors():
    with pytest.raises(NotFittedError, match="not fitted"):
        from_sklearn(MLPClassifier())
    with pytest.raises(NotFittedError, match="not fitted"):
        from_sklearn(fsk.MLPRegressor())
    with pytest.raises(TypeError, match="expects a fitted sklearn.neural_network.MLPClassifier"):
        from_sklearn(LogisticRegression().fit(X, TARGETS["binary"]))
    with pytest.raises(TypeError, match="expects a fitted"):
        from_sklearn("model")
    unknown_output = _fit("regression")
    unknown_output.out_activation_ = "softplus"
    with pytest.raises(ValueError, match="out_activation_='softplus'"):
        from_sklearn(unknown_output)
    broken = _fit("regression")
    broken.intercepts_ = broken.intercepts_[:-1]
    with pytest.raises(ValueError, match="inconsistent model"):
        from_sklearn(broken)

    with pytest.raises(TypeError, match="expects a ferrinet.NeuralNetwork"):
        to_sklearn(_fit("binary"))
    mixed = ferrinet.NeuralNetwork([3, 4, 4, 1], activation=["relu", "tanh"], loss="mse")
    with pytest.raises(ValueError, match="one hidden activation for every layer"):
        to_sklearn(mixed)
    odd = ferrinet.NeuralNetwork([3, 4, 1], output_activation="sigmoid", loss="mse")
    with pytest.raises(ValueError, match="no MLP with output activation 'sigmoid' and loss 'mse'"):
        to_sklearn(odd)
    clf = ferrinet.NeuralNetwork([3, 4, 3], loss="cross_entropy")
    with pytest.raises(ValueError, match="expected 3 distinct labels"):
        to_sklearn(clf, classes=[0, 1])
    with pytest.raises(ValueError, match="classes= is for classifiers"):
        to_sklearn(ferrinet.NeuralNetwork([3, 4, 1]), classes=[0, 1])
