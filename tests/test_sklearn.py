"""ferrinet.sklearn: MLPClassifier / MLPRegressor against scikit-learn's own MLPs.

The strongest check is parity: with solver='sgd' (and no dropout) a ferrinet estimator takes
exactly scikit-learn's steps (same initial weights, same shuffles, same objective, alpha
included), so the weights of both must agree to rounding after several epochs, for every
kind of target. That pins the alpha conversion, the loss scale per output kind, the last
smaller batch, momentum / Nesterov, the schedules, early stopping and the tol rule at once.
Measured differences are quoted next to each tolerance.
"""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

import ferrinet  # noqa: E402
from ferrinet import datasets  # noqa: E402
from ferrinet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkMLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402

no_convergence_warning = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data():
    rng = np.random.RandomState(0)
    X = rng.randn(150, 5)
    targets = {
        "binary": (X[:, 0] > 0).astype(int),
        "multiclass": (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5),
        "multilabel": np.c_[X[:, 0] > 0, X[:, 1] > 0, X[:, 2] > 0].astype(int),
        "regression": np.sin(X[:, 0]) + X[:, 1] ** 2,
        "regression2": np.c_[np.sin(X[:, 0]) + X[:, 1] ** 2, X[:, 2]],
        # counts, for MLPRegressor(loss="poisson"): rate exp(0.5 x0 + 0.3 x1), zeros included
        "poisson": rng.poisson(np.exp(0.5 * X[:, 0] + 0.3 * X[:, 1])).astype(float),
    }
    return X, targets


X, TARGETS = _data()
# 150 samples in batches of 32: four full batches and a last one of 22 (its own penalty)
SGD = dict(
    hidden_layer_sizes=(8, 7),
    solver="sgd",
    alpha=1e-2,
    batch_size=32,
    max_iter=6,
    random_state=0,
    learning_rate_init=0.05,
)


def _pair(kind, **params):
    if kind == "poisson":
        params = dict(params, loss="poisson")
    if kind.startswith("regression") or kind == "poisson":
        return MLPRegressor(**params), SkMLPRegressor(**params)
    return MLPClassifier(**params), SkMLPClassifier(**params)


def _max_weight_diff(a, b):
    return max(
        float(np.abs(u - v).max())
        for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_)
    )


# --------------------------------------------------------------------------------------------
# Parity with scikit-learn
# --------------------------------------------------------------------------------------------
@no_convergence_warning
@pytest.mark.parametrize("kind", list(TARGETS))
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_sgd_follows_sklearn_to_rounding(kind, activation):
    ours, theirs = _pair(kind, activation=activation, **SGD)
    y = TARGETS[kind]
    ours.fit(X, y)
    theirs.fit(X, y)
    # measured: <= 4.5e-16 after 6 epochs (30 SGD steps with Nesterov momentum)
    assert _max_weight_diff(ours, theirs) < 1e-12
    assert ours.n_iter_ == theirs.n_iter_ == 6
    assert ours.t_ == theirs.t_ == 6 * 150
    assert (ours.n_layers_, ours.n_outputs_, ours.out_activation_) == (
        theirs.n_layers_,
        theirs.n_outputs_,
        theirs.out_activation_,
    )
    assert [c.shape for c in ours.coefs_] == [c.shape for c in theirs.coefs_]
    if kind != "regression2":
        # the loss in scikit-learn's units, penalty included (measured <= 9e-16)
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12, atol=0)
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-12)
    if hasattr(theirs, "classes_"):
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
        np.testing.assert_allclose(
            ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=1e-12
        )
    else:
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=0, atol=1e-12)


@no_convergence_warning
def test_multioutput_regression_loss_curve_sums_the_outputs():
    # scikit-learn's gradient sums the squared errors over outputs but its loss_curve_ averages
    # them (docs/sklearn.md). Ours reports the objective minimised: with alpha=0 it is exactly
    # n_outputs times scikit-learn's number, while the weights agree to rounding.
    params = dict(SGD, alpha=0.0)
    ours, theirs = _pair("regression2", **params)
    ours.fit(X, TARGETS["regression2"])
    theirs.fit(X, TARGETS["regression2"])
    assert _max_weight_diff(ours, theirs) < 1e-12
    np.testing.assert_allclose(ours.loss_curve_, 2 * np.array(theirs.loss_curve_), rtol=1e-12)


@no_convergence_warning
@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_sgd_momentum_variants_follow_sklearn(momentum, nesterov):
    params = dict(SGD, momentum=momentum, nesterovs_momentum=nesterov, shuffle=False)
    ours, theirs = _pair("multiclass", **params)
    ours.fit(X, TARGETS["multiclass"])
    theirs.fit(X, TARGETS["multiclass"])
    assert _max_weight_diff(ours, theirs) < 1e-12


@no_convergence_warning
@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_learning_rate_schedules_follow_sklearn(kind):
    # invscaling: lr = learning_rate_init / (t_ + 1) ** power_t after each epoch; adaptive:
    # lr / 5 when the tol rule fires. Without momentum the updates are identical (with
    # momentum scikit-learn's velocity remembers old learning rates, PyTorch's buffer not).
    for schedule, extra in [("invscaling", {}), ("adaptive", dict(tol=0.5, n_iter_no_change=1))]:
        params = dict(SGD, momentum=0.0, learning_rate=schedule, max_iter=12, **extra)
        ours, theirs = _pair(kind, **params)
        ours.fit(X, TARGETS[kind])
        theirs.fit(X, TARGETS[kind])
        assert ours.n_iter_ == theirs.n_iter_, schedule
        assert _max_weight_diff(ours, theirs) < 1e-12, schedule
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
    # adaptive divided the learning rate at least once: lr is learning_rate_init / 5**k
    assert ours._lr < SGD["learning_rate_init"]


def test_tol_stopping_follows_sklearn():
    # a large tol: the training loss "does not improve" and both stop at the same epoch
    params = dict(SGD, max_iter=100, tol=0.05, n_iter_no_change=3)
    ours, theirs = _pair("multiclass", **params)
    ours.fit(X, TARGETS["multiclass"])
    theirs.fit(X, TARGETS["multiclass"])
    assert ours.n_iter_ == theirs.n_iter_ < 100
    assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-12)
    assert ours.validation_scores_ is None and ours.best_validation_score_ is None


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_early_stopping_follows_sklearn(kind):
    # binary targets: scikit-learn stratifies the split, so do we, with the same random state
    # (multiclass: we stratify and scikit-learn's code does not, see docs/sklearn.md)
    params = dict(SGD, max_iter=200, early_stopping=True, n_iter_no_change=3, tol=1e-3)
    ours, theirs = _pair(kind, **params)
    ours.fit(X, TARGETS[kind])
    theirs.fit(X, TARGETS[kind])
    assert ours.n_iter_ == theirs.n_iter_ < 200
    assert ours.t_ == theirs.t_ == ours.n_iter_ * 135  # 10% held out
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-12)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=1e-12)
    assert ours.best_loss_ is None and theirs.best_loss_ is None
    assert len(ours.validation_loss_curve_) == ours.n_iter_
    # the best epoch's weights were restored
    assert _max_weight_diff(ours, theirs) < 1e-12


def test_max_iter_warns_convergence_warning():
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(2\) reached"):
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0).fit(X, TARGETS["binary"])


@no_convergence_warning
def test_warm_start_and_partial_fit_follow_sklearn():
    y = TARGETS["multiclass"]
    params = dict(SGD, max_iter=3, warm_start=True)
    ours, theirs = _pair("multiclass", **params)
    for _ in range(2):  # the second fit continues the weights with a fresh optimizer
        ours.fit(X, y)
        theirs.fit(X, y)
    assert ours.t_ == theirs.t_ == 6 * 150 and ours.n_iter_ == 3
    assert len(ours.loss_curve_) == 6
    assert _max_weight_diff(ours, theirs) < 1e-12

    # partial_fit: one epoch per call, the optimizer (momentum) continued between calls
    params = {k: v for k, v in SGD.items() if k != "max_iter"}
    ours, theirs = _pair("multiclass", **params)
    for _ in range(3):
        ours.partial_fit(X, y, classes=np.unique(y))
        theirs.partial_fit(X, y, classes=np.unique(y))
    assert ours.n_iter_ == theirs.n_iter_ == 1 and ours.t_ == 450
    assert _max_weight_diff(ours, theirs) < 1e-12
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)


@no_convergence_warning
def test_partial_fit_classes_subset_and_errors():
    y = TARGETS["multiclass"]
    clf = MLPClassifier(hidden_layer_sizes=(5,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])  # a batch without class 2
    assert clf.n_outputs_ == 3 and clf.out_activation_ == "softmax"
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X, y + 5)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPRegressor(early_stopping=True).partial_fit(X, TARGETS["regression"])


@no_convergence_warning
def test_sample_weight_follows_sklearn():
    # full batch: scikit-learn's penalty alpha / (2 S) uses the weight sum S, as ours (exact);
    # constant weights c with mini-batches: S_B = c n_B, also exact
    rng = np.random.RandomState(1)
    w = rng.uniform(0.2, 3.0, size=150)
    for params, weights in [
        (dict(SGD, batch_size="auto"), w),  # min(200, 150): one batch
        (SGD, np.full(150, 2.5)),
    ]:
        ours, theirs = _pair("multiclass", **params)
        ours.fit(X, TARGETS["multiclass"], sample_weight=weights)
        theirs.fit(X, TARGETS["multiclass"], sample_weight=weights)
        assert _max_weight_diff(ours, theirs) < 1e-12
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)


def _max_relative_weight_diff(a, b):
    """max over parameters of |a - b| / max(|b|, 1e-3): relative, with a floor for weights
    passing near 0 (which keep the absolute rounding of the steps that formed them)."""
    return max(
        float((np.abs(u - v) / np.maximum(np.abs(v), 1e-3)).max())
        for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_)
    )


@no_convergence_warning
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("kind", list(TARGETS))
def test_adam_follows_sklearn(kind, shuffle):
    """scikit-learn's Adam (eps added to sqrt(v_t), the corrections in the step size), from the
    same initial weights and the same batches: 30 steps, weights within 1e-10 relative
    (measured: <= 2.2e-14). PyTorch's placement, the default elsewhere, drifts by ~1e-4."""
    params = dict(SGD, solver="adam", learning_rate_init=0.01, activation="tanh", shuffle=shuffle)
    ours, theirs = _pair(kind, **params)
    y = TARGETS[kind]
    ours.fit(X, y)
    theirs.fit(X, y)
    assert ours.network_.training_state.optimizer.eps_placement == "sklearn"
    assert _max_relative_weight_diff(ours, theirs) < 1e-10
    if kind != "regression2":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10, atol=0)


@no_convergence_warning
def test_adam_with_pytorchs_eps_would_drift_from_sklearn(monkeypatch):
    """The control: the same fit with PyTorch's placement is not scikit-learn's trajectory."""
    import ferrinet.sklearn as fsk

    real = fsk._optim.Adam
    monkeypatch.setattr(fsk._optim, "Adam", lambda **kw: real(**{**kw, "eps_placement": "pytorch"}))
    params = dict(SGD, solver="adam", learning_rate_init=0.01, activation="tanh", shuffle=False)
    ours, theirs = _pair("multiclass", **params)
    ours.fit(X, TARGETS["multiclass"])
    theirs.fit(X, TARGETS["multiclass"])
    assert ours.network_.training_state.optimizer.eps_placement == "pytorch"
    assert _max_relative_weight_diff(ours, theirs) > 1e-6


# --------------------------------------------------------------------------------------------
# Accuracy
# --------------------------------------------------------------------------------------------
def test_digits_accuracy_matches_sklearn():
    from threadpoolctl import threadpool_limits

    X_all, y_all = datasets.digits()
    X_tr, X_te, y_tr, y_te = datasets.train_test_split(
        X_all, y_all, test_size=0.25, seed=0, stratify=True
    )
    X_tr, X_te = datasets.standardize(X_tr, X_te)
    params = dict(hidden_layer_sizes=(100,), random_state=0, max_iter=200)  # adam, the defaults
    ours = MLPClassifier(**params).fit(X_tr, y_tr)
    # one BLAS thread: scikit-learn's many small products take 2.3 s that way, 11 s with two
    with threadpool_limits(limits=1):
        theirs = SkMLPClassifier(**params).fit(X_tr, y_tr)
    acc_ours, acc_theirs = ours.score(X_te, y_te), theirs.score(X_te, y_te)
    # measured: 0.9778 and 0.9778 (both stop on the tol rule after 140 epochs)
    assert acc_ours >= 0.95
    assert abs(acc_ours - acc_theirs) <= 0.01
    assert abs(ours.n_iter_ - theirs.n_iter_) <= 5


def test_regressor_reaches_r2_on_a_smooth_function():
    rng = np.random.RandomState(0)
    Xr = rng.uniform(-2, 2, size=(600, 2))
    yr = np.sin(Xr[:, 0]) * np.cos(Xr[:, 1]) + 0.5 * Xr[:, 1]
    reg = MLPRegressor(
        hidden_layer_sizes=(32, 32), learning_rate_init=0.01, max_iter=500, random_state=0
    )
    reg.fit(Xr[:400], yr[:400])
    # measured: R^2 0.9985 on the 200 held-out samples (scikit-learn, same parameters: 0.9986)
    assert reg.score(Xr[400:], yr[400:]) >= 0.99
    assert reg.n_iter_ < 500


# --------------------------------------------------------------------------------------------
# Fitted attributes and outputs
# --------------------------------------------------------------------------------------------
@no_convergence_warning
def test_fitted_attributes_and_layout():
    clf = MLPClassifier(hidden_layer_sizes=(6, 4), max_iter=5, random_state=0)
    clf.fit(X, TARGETS["multiclass"])
    net = clf.network_
    assert isinstance(net, ferrinet.NeuralNetwork)
    assert net.sizes == [5, 6, 4, 3] and net.loss == "cross_entropy"
    assert [c.shape for c in clf.coefs_] == [(5, 6), (6, 4), (4, 3)]
    assert [b.shape for b in clf.intercepts_] == [(6,), (4,), (3,)]
    for coef, intercept, layer in zip(clf.coefs_, clf.intercepts_, net.layers):
        np.testing.assert_array_equal(coef, layer.weights.T)
        np.testing.assert_array_equal(intercept, layer.biases)
        assert coef.flags.c_contiguous
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 3 and clf.out_activation_ == "softmax"
    assert clf.n_features_in_ == 5 and not hasattr(clf, "feature_names_in_")
    assert len(clf.loss_curve_) == clf.n_iter_ == 5 and clf.t_ == 750
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_loss_curve_ is None


@no_convergence_warning
def test_classifier_output_kinds_and_string_labels():
    labels = np.array(["cat", "dog", "emu"])
    y = labels[TARGETS["multiclass"]]
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), labels[proba.argmax(axis=1)])
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba), rtol=1e-12)

    yb = np.where(TARGETS["binary"] == 1, "yes", "no")
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, yb)
    assert clf.network_.sizes[-1] == 1 and clf.network_.loss == "binary_cross_entropy"
    proba = clf.predict_proba(X)
    p = clf.network_.predict(X).ravel()
    np.testing.assert_array_equal(proba, np.c_[1 - p, p])
    np.testing.assert_array_equal(clf.predict(X), np.where(p > 0.5, "yes", "no"))

    ym = TARGETS["multilabel"]
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, ym)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 3
    assert clf.predict(X).shape == (150, 3) and clf.predict_proba(X).shape == (150, 3)
    np.testing.assert_array_equal(clf.predict(X), (clf.predict_proba(X) > 0.5).astype(int))


@no_convergence_warning
def test_regressor_output_shapes():
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    assert reg.fit(X, TARGETS["regression"]).predict(X).shape == (150,)
    assert reg.fit(X, TARGETS["regression2"]).predict(X).shape == (150, 2)
    assert reg.network_.loss == "mse" and reg.out_activation_ == "identity"


def test_unfitted_estimators_raise_not_fitted():
    for est in (MLPClassifier(), MLPRegressor()):
        with pytest.raises(NotFittedError):
            est.predict(X)


def test_feature_names_in_with_a_dataframe():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(
            df, TARGETS["binary"]
        )
    np.testing.assert_array_equal(clf.feature_names_in_, df.columns.to_numpy())
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        np.testing.assert_array_equal(clf.predict(df), clf.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df.rename(columns={"f0": "other"}))


# --------------------------------------------------------------------------------------------
# What scikit-learn does not have
# --------------------------------------------------------------------------------------------
@no_convergence_warning
def test_per_layer_activations_and_more_names():
    clf = MLPClassifier(
        hidden_layer_sizes=(8, 6, 4),
        activation=["leaky_relu", "tanh", "logistic"],
        max_iter=5,
        random_state=0,
    ).fit(X, TARGETS["multiclass"])
    assert clf.network_.activations == ["leaky_relu", "tanh", "sigmoid", "softmax"]
    reg = MLPRegressor(hidden_layer_sizes=(), max_iter=5, random_state=0).fit(
        X, TARGETS["regression"]
    )
    assert reg.network_.sizes == [5, 1] and reg.n_layers_ == 2
    with pytest.raises(ValueError, match=r"one name per hidden layer \(2\), got 1"):
        MLPClassifier(hidden_layer_sizes=(3, 3), activation=["relu"]).fit(X, TARGETS["binary"])
    with pytest.raises(ValueError, match="activation must be one of"):
        MLPClassifier(activation="softmax").fit(X, TARGETS["binary"])


@no_convergence_warning
def test_dropout_is_seeded_and_changes_training():
    params = dict(hidden_layer_sizes=(16, 8), max_iter=5, random_state=0)
    y = TARGETS["multiclass"]
    plain = MLPClassifier(**params).fit(X, y)
    a = MLPClassifier(dropout=0.3, **params).fit(X, y)
    b = MLPClassifier(dropout=[0.3, 0.3], **params).fit(X, y)
    assert _max_weight_diff(a, b) == 0.0  # same random_state: the same masks
    assert _max_weight_diff(a, plain) > 1e-3
    with pytest.raises(ValueError, match="dropout"):
        MLPClassifier(dropout=1.0, **params).fit(X, y)
    with pytest.raises(ValueError, match="one rate per hidden layer"):
        MLPClassifier(dropout=[0.1], **params).fit(X, y)


@no_convergence_warning
def test_class_weight_is_sample_weight_per_class():
    y = TARGETS["multiclass"]
    params = dict(SGD, batch_size="auto")  # one batch of 150
    cw = {0: 2.0, 2: 0.5}
    a = MLPClassifier(class_weight=cw, **params).fit(X, y)
    b = MLPClassifier(**params).fit(X, y, sample_weight=compute_sample_weight(cw, y))
    assert _max_weight_diff(a, b) == 0.0
    a = MLPClassifier(class_weight="balanced", **params).fit(X, y)
    b = MLPClassifier(**params).fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    assert _max_weight_diff(a, b) < 1e-15
    with pytest.raises(ValueError, match="not a class"):
        MLPClassifier(class_weight={7: 1.0}).fit(X, y)
    with pytest.raises(ValueError, match="multilabel"):
        MLPClassifier(class_weight="balanced").fit(X, TARGETS["multilabel"])
    with pytest.raises(ValueError, match="not supported by partial_fit"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


@no_convergence_warning
def test_float32():
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, random_state=0, dtype="float32")
    clf.fit(X, TARGETS["multiclass"])
    assert clf.network_.dtype == "float32"
    assert clf.coefs_[0].dtype == np.float32
    # results in result_type(X.dtype, float32), as scikit-learn's forward pass
    assert clf.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert clf.predict_proba(X).dtype == np.float64
    ref = MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, random_state=0).fit(
        X, TARGETS["multiclass"]
    )
    # the same run in single precision: measured max |dp| 3e-5 after 50 epochs
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), atol=1e-3)
    with pytest.raises(ValueError, match="dtype must be None, 'float64' or 'float32'"):
        MLPClassifier(dtype="int8").fit(X, TARGETS["binary"])


@no_convergence_warning
def test_validation_data():
    y = TARGETS["multiclass"]
    Xv, yv = X[:40] + 0.1, y[:40]
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=7, random_state=0)
    clf.fit(X, y, validation_data=(Xv, yv))
    assert len(clf.validation_loss_curve_) == len(clf.validation_scores_) == 7
    # the last entries describe the final weights: loss without penalty, accuracy
    assert clf.validation_loss_curve_[-1] == pytest.approx(
        clf.network_.compute_loss(Xv, yv), rel=1e-12
    )
    assert clf.validation_scores_[-1] == clf.score(Xv, yv)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ == min(clf.loss_curve_)  # stopping still follows the training loss

    # with early stopping, the given set replaces the validation_fraction split
    es = MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0, early_stopping=True)
    es.fit(X, y, validation_data=(Xv, yv))
    assert es.t_ == es.n_iter_ * 150 and es.n_iter_ < 300
    assert es.score(Xv, yv) == es.best_validation_score_  # the best epoch's weights

    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=4, random_state=0)
    reg.fit(X, TARGETS["regression"], validation_data=(Xv, TARGETS["regression"][:40], np.ones(40)))
    # regression: R^2 and half the mean squared error
    assert reg.validation_scores_[-1] == pytest.approx(
        reg.score(Xv, TARGETS["regression"][:40]), rel=1e-12
    )
    half_mse = 0.5 * np.mean((reg.predict(Xv) - TARGETS["regression"][:40]) ** 2)
    assert reg.validation_loss_curve_[-1] == pytest.approx(half_mse, rel=1e-12)

    with pytest.raises(ValueError, match="labels"):
        MLPClassifier(max_iter=1).fit(X, y, validation_data=(Xv, yv + 10))
    with pytest.raises(TypeError, match="validation_data must be a pair"):
        MLPClassifier(max_iter=1).fit(X, y, validation_data=Xv)
    with pytest.raises(ValueError, match="features"):
        MLPClassifier(max_iter=1).fit(X, y, validation_data=(Xv[:, :3], yv))


def test_multiclass_early_stopping_split_is_stratified():
    # 3 classes of 50: a 20% stratified validation split holds 10 of each (scikit-learn's own
    # code would not stratify a multiclass split)
    y = np.repeat([0, 1, 2], 50)
    clf = MLPClassifier(validation_fraction=0.2, early_stopping=True, random_state=0)
    clf._label_binarizer = sklearn.preprocessing.LabelBinarizer().fit(y)
    clf.classes_ = clf._label_binarizer.classes_
    clf._random_state = np.random.RandomState(0)
    params = clf._check_params(False)
    val, X_tr, y_tr, _, _ = clf._split(params, X, y, clf._encode(y), None)
    np.testing.assert_array_equal(np.bincount(val[1]), [10, 10, 10])
    np.testing.assert_array_equal(np.bincount(y_tr), [40, 40, 40])


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(solver="newton"), ValueError, "solver must be one of 'lbfgs', 'sgd', 'adam'"),
        (dict(max_fun=0), ValueError, "max_fun must be an integer >= 1, got 0"),
        (dict(alpha=-1.0), ValueError, r"alpha must be a finite number in \[0, inf\), got -1.0"),
        (dict(alpha="big"), TypeError, "alpha must be a real number, got 'big'"),
        (dict(momentum=1.0), ValueError, r"momentum must be a finite number in \[0, 1\)"),
        (dict(hidden_layer_sizes=(3, 0)), ValueError, "hidden_layer_sizes must be > 0"),
        (dict(hidden_layer_sizes="3"), TypeError, "hidden_layer_sizes must be an int"),
        (dict(batch_size="big"), ValueError, "batch_size must be 'auto' or an integer"),
        (dict(learning_rate="cosine"), ValueError, "learning_rate must be one of"),
        (dict(max_iter=0), ValueError, "max_iter must be an integer >= 1, got 0"),
        (dict(n_iter_no_change=2.5), TypeError, "n_iter_no_change"),
        (dict(class_weight="auto"), ValueError, "class_weight must be a dict, 'balanced' or None"),
    ],
)
def test_bad_parameters_raise_at_fit(params, error, match):
    clf = MLPClassifier(**params)  # __init__ never checks (scikit-learn's rule)
    with pytest.raises(error, match=match):
        clf.fit(X, TARGETS["multiclass"])
    assert not hasattr(clf, "network_")


def test_zero_sample_weights_are_refused():
    with pytest.raises(ValueError, match="at least one non-zero"):  # scikit-learn's check
        MLPRegressor(max_iter=1).fit(X, TARGETS["regression"], sample_weight=np.zeros(150))
    with pytest.raises(ValueError, match="sum to 0; nothing to learn from"):
        MLPClassifier(max_iter=1, class_weight={0: 0, 1: 0}).fit(X, TARGETS["binary"])
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        MLPRegressor(max_iter=1).fit(X, TARGETS["regression"], sample_weight=-np.ones(150))


@no_convergence_warning
def test_poisson_regressor_has_an_exp_output_and_refuses_negative_targets():
    y = TARGETS["poisson"]
    assert (y == 0).any() and y.max() > 3
    reg = MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), max_iter=30, random_state=0)
    reg.fit(X, y)
    assert reg.out_activation_ == "exp" and reg.network_.loss == "poisson"
    pred = reg.predict(X)
    assert pred.shape == (150,) and (pred > 0).all()
    hidden = np.maximum(X @ reg.coefs_[0] + reg.intercepts_[0], 0.0)
    z = (hidden @ reg.coefs_[1] + reg.intercepts_[1]).ravel()
    np.testing.assert_allclose(pred, np.exp(z), rtol=1e-13, atol=0)
    before = [c.copy() for c in reg.coefs_]
    bad = y.copy()
    bad[7] = -1.0
    with pytest.raises(ValueError, match=r"loss='poisson' requires y >= 0.*-1\.0.*sample 7"):
        reg.fit(X, bad)
    with pytest.raises(ValueError, match="requires y >= 0"):
        reg.partial_fit(X, bad)
    for a, b in zip(reg.coefs_, before):  # the failed calls changed nothing
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="validation_data's y_val >= 0"):
        MLPRegressor(loss="poisson", max_iter=2).fit(X, y, validation_data=(X[:5], bad[5:10]))
    with pytest.raises(ValueError, match="loss"):
        MLPRegressor(loss="gamma").fit(X, y)
    # warm start from squared error to poisson would keep an identity output: refused
    warm = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, warm_start=True, random_state=0)
    warm.fit(X, y)
    with pytest.raises(ValueError, match="output is 'identity'.*'exp'"):
        warm.set_params(loss="poisson").fit(X, y)


@no_convergence_warning
def test_warm_start_with_another_architecture_is_refused():
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0, warm_start=True)
    clf.fit(X, TARGETS["multiclass"])
    clf.set_params(hidden_layer_sizes=(5,))
    with pytest.raises(ValueError, match="set warm_start=False"):
        clf.fit(X, TARGETS["multiclass"])
    with pytest.raises(ValueError, match="same classes"):
        clf.set_params(hidden_layer_sizes=(4,)).fit(X, TARGETS["binary"])


def test_divergence_is_a_value_error():
    reg = MLPRegressor(
        hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=1e4, max_iter=50, random_state=0
    )
    with pytest.raises(ValueError, match="non-finite") as info:
        reg.fit(X, 1e6 * TARGETS["regression"])
    # scikit-learn's words first (code matches on them), then what ferrinet saw
    assert str(info.value).startswith(
        "Solver produced non-finite parameter weights. The input data may contain large "
        "values and need to be preprocessed. (ferrinet refused the step at epoch "
    )
    assert isinstance(info.value.__cause__, ferrinet.DivergenceError)
    assert all(np.isfinite(c).all() for c in reg.coefs_)  # the last finite weights


@no_convergence_warning
def test_batch_size_larger_than_the_data_is_clipped_with_a_warning():
    with pytest.warns(UserWarning, match="It is going to be clipped"):
        MLPClassifier(batch_size=500, max_iter=2, random_state=0).fit(X, TARGETS["binary"])


@no_convergence_warning
def test_verbose_prints_each_epoch(capsys):
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0, verbose=True).fit(
        X, TARGETS["binary"]
    )
    out = capsys.readouterr().out
    assert "Iteration 1, loss = " in out and "Iteration 2, loss = " in out


# --------------------------------------------------------------------------------------------
# scikit-learn's tools
# --------------------------------------------------------------------------------------------
def _iris_pipeline(**params):
    clf = MLPClassifier(
        hidden_layer_sizes=(16,),
        batch_size=16,
        learning_rate_init=0.01,
        max_iter=100,
        random_state=0,
    )
    return make_pipeline(StandardScaler(), clf.set_params(**params))


@no_convergence_warning
def test_pipeline_clone_and_cross_val_score():
    X_iris, y_iris = datasets.iris()
    pipe = _iris_pipeline()
    # measured: 0.98 on the training data, cross-validated 0.98 / 0.96 / 0.96
    scores = cross_val_score(pipe, X_iris, y_iris, cv=3)
    assert scores.shape == (3,) and scores.min() >= 0.93
    pipe.fit(X_iris, y_iris)
    assert pipe.score(X_iris, y_iris) >= 0.95

    clf = pipe[-1]
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and not hasattr(twin, "network_")
    twin.fit(pipe[0].transform(X_iris), y_iris)
    for a, b in zip(twin.coefs_, clf.coefs_):  # same random_state: the same fit
        np.testing.assert_array_equal(a, b)


@no_convergence_warning
def test_grid_search_with_two_processes():
    X_iris, y_iris = datasets.iris()
    grid = {
        "mlpclassifier__hidden_layer_sizes": [(4,), (16,)],
        "mlpclassifier__alpha": [1e-4, 1.0],
    }
    search = GridSearchCV(_iris_pipeline(), grid, cv=3, n_jobs=2).fit(X_iris, y_iris)
    serial = GridSearchCV(_iris_pipeline(), grid, cv=3, n_jobs=1).fit(X_iris, y_iris)
    assert search.best_params_ == serial.best_params_
    np.testing.assert_array_equal(
        search.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
    # measured: best (16,), alpha 1e-4, mean cross-validated accuracy 0.967
    assert search.best_score_ >= 0.93
    assert search.best_estimator_.score(X_iris, y_iris) >= 0.95


@no_convergence_warning
@pytest.mark.parametrize(
    "Estimator, kind", [(MLPClassifier, "multiclass"), (MLPRegressor, "regression")]
)
def test_pickle_round_trip(Estimator, kind):
    est = Estimator(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, TARGETS[kind])
    back = pickle.loads(pickle.dumps(est))
    predict = "predict_proba" if kind == "multiclass" else "predict"
    np.testing.assert_array_equal(getattr(back, predict)(X), getattr(est, predict)(X))
    assert back.get_params() == est.get_params()
    for a, b in zip(back.coefs_, est.coefs_):
        np.testing.assert_array_equal(a, b)
    # the network pickles its training run (optimizer moments, step count) bit for bit, so
    # partial_fit on the copy continues exactly as on the original
    back.partial_fit(X, TARGETS[kind])
    est.partial_fit(X, TARGETS[kind])
    assert _max_weight_diff(back, est) == 0.0
    assert back.t_ == est.t_ == 21 * 150


# --------------------------------------------------------------------------------------------
# Optional dependency
# --------------------------------------------------------------------------------------------
def test_import_ferrinet_does_not_import_sklearn():
    code = "import sys, ferrinet, ferrinet.interop; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_sklearn_gives_the_install_hint():
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "try:\n    import ferrinet.sklearn\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install ferrinet[sklearn]" in out.stdout
