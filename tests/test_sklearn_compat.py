"""ferrinet.sklearn as a drop-in for scikit-learn's MLPs (issue #16): L-BFGS, the dtype that
follows the input, writable ``coefs_`` / ``intercepts_``, divergence, ``partial_fit`` only
for the stochastic solvers, ``_optimizer``, and data larger than memory.

The L-BFGS tests run scikit-learn's estimator and ours from the same initial weights (both
draw them from the same random state in the same order; the tests check the starting vectors
handed to scipy are equal) and compare the loss after every L-BFGS iteration, which
scikit-learn computes but does not keep: a wrapper around ``scipy.optimize.minimize`` records
it for scikit-learn's run.
"""

import tracemalloc
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
scipy_optimize = pytest.importorskip("scipy.optimize")

from ferrinet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.datasets import load_diabetes, load_digits, load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkMLPRegressor  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

no_convergence_warning = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

NON_FINITE = (
    "Solver produced non-finite parameter weights. The input data may contain large values "
    "and need to be preprocessed."
)


def _data():
    rng = np.random.RandomState(0)
    X = rng.randn(150, 5)
    targets = {
        "binary": (X[:, 0] > 0).astype(int),
        "multiclass": (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5),
        "multilabel": np.c_[X[:, 0] > 0, X[:, 1] > 0, X[:, 2] > 0].astype(int),
        "regression": np.sin(X[:, 0]) + X[:, 1] ** 2,
    }
    return X, targets


X, TARGETS = _data()


def _pair(kind, **params):
    if kind.startswith("regression"):
        return MLPRegressor(**params), SkMLPRegressor(**params)
    return MLPClassifier(**params), SkMLPClassifier(**params)


def _max_weight_diff(a, b):
    return max(
        float(np.abs(np.asarray(u) - np.asarray(v)).max())
        for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_)
    )


class _Recorder:
    """Wraps scipy.optimize.minimize: records x0 and the loss after every iteration."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = scipy_optimize.minimize

        def minimize(fun, x0, *args, callback=None, **kwargs):
            record = {"x0": np.array(x0, dtype=np.float64), "losses": []}
            self.calls.append(record)

            def cb(intermediate_result):
                record["losses"].append(float(intermediate_result.fun))
                if callback is not None:
                    callback(intermediate_result.x)

            return real(fun, x0, *args, callback=cb, **kwargs)

        monkeypatch.setattr(scipy_optimize, "minimize", minimize)


# --------------------------------------------------------------------------------------------
# L-BFGS
# --------------------------------------------------------------------------------------------
@no_convergence_warning
@pytest.mark.parametrize("kind", list(TARGETS))
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
def test_lbfgs_follows_sklearn_for_20_iterations(kind, activation, monkeypatch):
    params = dict(
        hidden_layer_sizes=(8, 7),
        solver="lbfgs",
        activation=activation,
        alpha=1e-2,
        max_iter=20,
        random_state=0,
    )
    ours, theirs = _pair(kind, **params)
    y = TARGETS[kind]
    rec = _Recorder(monkeypatch)
    theirs.fit(X, y)
    ours.fit(X, y)
    (sk_call, our_call) = rec.calls
    # the same starting point, packed the same way
    np.testing.assert_array_equal(our_call["x0"], sk_call["x0"])
    # loss_curve_ (ours) is the loss scipy saw after each iteration (the recorder's view of
    # our run), and it equals scikit-learn's to 1e-6 relative (measured: <= 2e-12)
    assert ours.loss_curve_ == our_call["losses"]
    assert len(ours.loss_curve_) == len(sk_call["losses"]) == 20
    np.testing.assert_allclose(ours.loss_curve_, sk_call["losses"], rtol=1e-6, atol=0)
    assert ours.n_iter_ == theirs.n_iter_ == 20
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)
    assert ours.loss_ == ours.loss_curve_[-1]
    # scikit-learn's lbfgs has no loss_curve_, best_loss_ or validation scores (ours: only
    # loss_curve_, documented), no optimizer and t_ = 0
    assert not hasattr(theirs, "loss_curve_")
    for name in ("best_loss_", "validation_scores_", "best_validation_score_", "_optimizer"):
        assert not hasattr(ours, name) and not hasattr(theirs, name)
    assert ours.t_ == theirs.t_ == 0
    assert all(c.dtype == np.float64 for c in ours.coefs_ + ours.intercepts_)


def _counts():
    """Count targets for loss='poisson': one output, and two with sample weights (zeros among
    both the counts and the weights)."""
    rng = np.random.RandomState(1)
    y = rng.poisson(np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1] + 0.2)).astype(float)
    Y2 = np.c_[y, rng.poisson(np.exp(0.3 * X[:, 2]))].astype(float)
    w = np.random.RandomState(3).randint(0, 4, len(X)).astype(float)
    return y, Y2, w


@no_convergence_warning
@pytest.mark.parametrize(
    "activation, outputs", [("relu", 1), ("tanh", 1), ("logistic", 1), ("tanh", 2)]
)
def test_lbfgs_poisson_follows_sklearn_for_20_iterations(activation, outputs, monkeypatch):
    # scikit-learn's lbfgs on loss='poisson' (1.7+): exp outputs, its value the half Poisson
    # deviance averaged over the samples (weighted) and summed over the outputs
    # (sklearn.neural_network._base.poisson_loss), its gradient exp(z) - y
    y, Y2, w = _counts()
    target, weights = (y, None) if outputs == 1 else (Y2, w)
    params = dict(
        hidden_layer_sizes=(8, 7) if outputs == 1 else (6,),
        solver="lbfgs",
        activation=activation,
        alpha=1e-2,
        max_iter=20,
        random_state=0,
        loss="poisson",
    )
    ours, theirs = MLPRegressor(**params), SkMLPRegressor(**params)
    rec = _Recorder(monkeypatch)
    theirs.fit(X, target, sample_weight=weights)
    ours.fit(X, target, sample_weight=weights)
    (sk_call, our_call) = rec.calls
    np.testing.assert_array_equal(our_call["x0"], sk_call["x0"])
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    # measured: <= 1.6e-14 relative
    assert len(ours.loss_curve_) == len(sk_call["losses"]) == 20
    np.testing.assert_allclose(ours.loss_curve_, sk_call["losses"], rtol=1e-6, atol=0)
    assert ours.n_iter_ == theirs.n_iter_ == 20
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)
    assert _max_weight_diff(ours, theirs) < 1e-6
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-6)


def _subsets():
    Xi, yi = load_iris(return_X_y=True)
    Xd, yd = load_digits(return_X_y=True)
    Xr, yr = load_diabetes(return_X_y=True)
    scale = StandardScaler()
    return {
        "iris": (scale.fit_transform(Xi), yi, "classification"),
        "digits": (Xd[:400] / 16.0, yd[:400], "classification"),
        "diabetes": (scale.fit_transform(Xr[:200]), yr[:200] / 100.0, "regression"),
    }


@pytest.mark.parametrize(
    "name, hidden, alpha, score_tol, loss_rtol",
    [
        # measured: loss_ 1.5e-8 apart, the same accuracy (1.0), both 81 iterations
        ("iris", (10,), 1e-2, 0.0, 1e-6),
        # measured: loss_ 2.5e-10 apart, the same accuracy (1.0), both 110 iterations
        ("digits", (20,), 1e-1, 0.0, 1e-6),
        # a flat minimum: both stop on L-BFGS-B's ftol after 124 / 113 iterations at points
        # whose R^2 differ by 1.6e-4 (loss_ 2.1e-5); scikit-learn run on the same rows in
        # another order lands as far from itself (sums rounded differently)
        ("diabetes", (5,), 10.0, 1e-3, 1e-4),
    ],
)
def test_lbfgs_converges_to_sklearn_scores(name, hidden, alpha, score_tol, loss_rtol):
    Xs, ys, task = _subsets()[name]
    params = dict(hidden_layer_sizes=hidden, solver="lbfgs", alpha=alpha, random_state=1)
    params["max_iter"] = 3000
    kind = "regression" if task == "regression" else "multiclass"
    ours, theirs = _pair(kind, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # both converge (tol=1e-4)
        ours.fit(Xs, ys)
        theirs.fit(Xs, ys)
    assert abs(ours.score(Xs, ys) - theirs.score(Xs, ys)) <= score_tol
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=loss_rtol)


def test_lbfgs_max_iter_warns_sklearns_convergence_warning():
    ours, theirs = _pair("multiclass", solver="lbfgs", max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning) as ours_w:
        ours.fit(X, TARGETS["multiclass"])
    with pytest.warns(ConvergenceWarning) as theirs_w:
        theirs.fit(X, TARGETS["multiclass"])
    assert str(ours_w[0].message) == str(theirs_w[0].message)
    assert "lbfgs failed to converge after 3 iteration(s)" in str(ours_w[0].message)
    assert ours.n_iter_ == 3


def test_lbfgs_max_fun_limits_the_evaluations():
    ours = MLPClassifier(solver="lbfgs", max_fun=10, max_iter=150, random_state=1)
    with pytest.warns(ConvergenceWarning):
        ours.fit(X, TARGETS["multiclass"])
    assert ours.n_iter_ <= 10
    theirs = SkMLPClassifier(solver="lbfgs", max_fun=10, max_iter=150, random_state=1)
    with pytest.warns(ConvergenceWarning):
        theirs.fit(X, TARGETS["multiclass"])
    assert ours.n_iter_ == theirs.n_iter_


@no_convergence_warning
def test_lbfgs_sample_weight_and_warm_start_follow_sklearn(monkeypatch):
    w = np.random.RandomState(3).randint(0, 4, 150).astype(float)
    params = dict(hidden_layer_sizes=(6,), solver="lbfgs", alpha=0.1, max_iter=10)
    ours, theirs = _pair("regression", random_state=0, warm_start=True, **params)
    rec = _Recorder(monkeypatch)
    for est in (theirs, ours):
        est.fit(X, TARGETS["regression"], sample_weight=w)
        est.fit(X, TARGETS["regression"], sample_weight=w)  # continues from coefs_
    sk1, sk2, our1, our2 = rec.calls
    np.testing.assert_array_equal(our1["x0"], sk1["x0"])
    # the second fit starts where the first ended (measured 1.9e-15 apart)
    np.testing.assert_allclose(our2["x0"], sk2["x0"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(our1["losses"] + our2["losses"], ours.loss_curve_)
    np.testing.assert_allclose(ours.loss_curve_, sk1["losses"] + sk2["losses"], rtol=1e-6)
    assert _max_weight_diff(ours, theirs) < 1e-6


def test_lbfgs_refuses_dropout_and_validation_data():
    with pytest.raises(ValueError, match="cannot be used with solver='lbfgs'"):
        MLPClassifier(solver="lbfgs", dropout=0.2).fit(X, TARGETS["binary"])
    with pytest.raises(ValueError, match="solver='lbfgs' has no epochs"):
        MLPClassifier(solver="lbfgs").fit(
            X, TARGETS["binary"], validation_data=(X, TARGETS["binary"])
        )


# --------------------------------------------------------------------------------------------
# partial_fit only for the stochastic solvers; _optimizer
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_partial_fit_exists_for_stochastic_solvers_only(Estimator):
    assert hasattr(Estimator(solver="sgd"), "partial_fit")
    assert hasattr(Estimator(solver="adam"), "partial_fit")
    assert not hasattr(Estimator(solver="lbfgs"), "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as info:
        Estimator(solver="lbfgs").partial_fit(X, TARGETS["binary"])
    # scikit-learn's message, as the cause
    assert str(info.value.__cause__) == (
        "partial_fit is only available for stochastic optimizers. lbfgs is not stochastic."
    )


@no_convergence_warning
def test_optimizer_learning_rate_as_sklearns_warmstart_test():
    # scikit-learn's test_learning_rate_warmstart, unchanged but for the import
    Xw = [[3, 2], [1, 6], [5, 6], [-2, -4]]
    yw = [1, 1, 1, 0]
    for learning_rate in ["invscaling", "constant"]:
        mlp = MLPClassifier(
            solver="sgd",
            hidden_layer_sizes=4,
            learning_rate=learning_rate,
            max_iter=1,
            power_t=0.25,
            warm_start=True,
        )
        mlp.fit(Xw, yw)
        prev_eta = mlp._optimizer.learning_rate
        mlp.fit(Xw, yw)
        post_eta = mlp._optimizer.learning_rate
        if learning_rate == "constant":
            assert prev_eta == post_eta
        else:
            assert mlp.learning_rate_init / pow(8 + 1, mlp.power_t) == post_eta


@no_convergence_warning
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_optimizer_state_matches_sklearns(solver):
    params = dict(hidden_layer_sizes=(5,), solver=solver, batch_size=32, max_iter=3)
    ours, theirs = _pair("multiclass", random_state=0, **params)
    ours.fit(X, TARGETS["multiclass"])
    theirs.fit(X, TARGETS["multiclass"])
    assert ours._optimizer.learning_rate == pytest.approx(
        theirs._optimizer.learning_rate, rel=1e-14
    )
    if solver == "adam":
        assert ours._optimizer.t == theirs._optimizer.t == 3 * 5  # 5 batches per epoch
    ours.partial_fit(X, TARGETS["multiclass"])
    theirs.partial_fit(X, TARGETS["multiclass"])
    assert ours._optimizer.learning_rate == pytest.approx(
        theirs._optimizer.learning_rate, rel=1e-14
    )


# --------------------------------------------------------------------------------------------
# dtype follows the input
# --------------------------------------------------------------------------------------------
@no_convergence_warning
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_dtype_follows_the_input_as_sklearn(solver, dtype, kind):
    params = dict(hidden_layer_sizes=(5, 3), solver=solver, max_iter=5, random_state=1)
    ours, theirs = _pair(kind, **params)
    Xd = X.astype(dtype)
    y = TARGETS[kind]
    ours.fit(Xd, y)
    theirs.fit(Xd, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.dtype == b.dtype
    if kind == "regression":
        assert ours.predict(Xd).dtype == theirs.predict(Xd).dtype
    else:
        assert ours.predict_proba(Xd).dtype == theirs.predict_proba(Xd).dtype
        assert ours.predict(Xd).dtype == theirs.predict(Xd).dtype
    expected = "float32" if (dtype == np.float32 and solver != "lbfgs") else "float64"
    assert ours.network_.dtype == expected
    # continuing keeps the network's dtype whatever the dtype of the new data
    if solver != "lbfgs":
        ours.partial_fit(X.astype(np.float64), y)
        assert ours.network_.dtype == expected and ours.coefs_[0].dtype == expected


# --------------------------------------------------------------------------------------------
# coefs_ / intercepts_ are the model
# --------------------------------------------------------------------------------------------
def _sklearn_worked_example(Estimator):
    # scikit-learn's test_fit (sklearn/neural_network/tests/test_mlp.py), the setup unchanged
    X1 = np.array([[0.6, 0.8, 0.7]])
    y1 = np.array([0])
    mlp = Estimator(
        solver="sgd",
        learning_rate_init=0.1,
        alpha=0.1,
        activation="logistic",
        random_state=1,
        max_iter=1,
        hidden_layer_sizes=2,
        momentum=0,
    )
    mlp.coefs_ = [0] * 2
    mlp.intercepts_ = [0] * 2
    mlp.n_outputs_ = 1
    mlp.coefs_[0] = np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0]])
    mlp.coefs_[1] = np.array([[0.1], [0.2]])
    mlp.intercepts_[0] = np.array([0.1, 0.1])
    mlp.intercepts_[1] = np.array([1.0])
    mlp._coef_grads = [] * 2
    mlp._intercept_grads = [] * 2
    mlp.n_features_in_ = 3
    mlp.n_iter_ = 0
    mlp.learning_rate_ = 0.1
    mlp.n_layers_ = 3
    mlp._coef_grads = [0] * (mlp.n_layers_ - 1)
    mlp._intercept_grads = [0] * (mlp.n_layers_ - 1)
    mlp.out_activation_ = "logistic"
    mlp.t_ = 0
    mlp.best_loss_ = np.inf
    mlp.loss_curve_ = []
    mlp._no_improvement_count = 0
    mlp._intercept_velocity = [np.zeros_like(intercepts) for intercepts in mlp.intercepts_]
    mlp._coef_velocity = [np.zeros_like(coefs) for coefs in mlp.coefs_]
    mlp.partial_fit(X1, y1, classes=[0, 1])
    return mlp, X1


def test_sklearns_worked_example_of_one_sgd_step():
    mlp, X1 = _sklearn_worked_example(MLPClassifier)
    # scikit-learn's hand-computed numbers (its test checks 3 decimals)
    np.testing.assert_almost_equal(
        mlp.coefs_[0],
        np.array([[0.098, 0.195756], [0.2956664, 0.096008], [0.4939998, -0.002244]]),
        decimal=3,
    )
    np.testing.assert_almost_equal(mlp.coefs_[1], np.array([[0.04706], [0.154089]]), decimal=3)
    np.testing.assert_almost_equal(mlp.intercepts_[0], np.array([0.098333, 0.09626]), decimal=3)
    np.testing.assert_almost_equal(mlp.intercepts_[1], np.array(0.9235), decimal=3)
    np.testing.assert_almost_equal(mlp.predict_proba(X1)[0, 1], 0.739, decimal=3)
    # and scikit-learn's own estimator from the same setup, to rounding
    sk, _ = _sklearn_worked_example(SkMLPClassifier)
    assert _max_weight_diff(mlp, sk) < 1e-15
    assert mlp.predict_proba(X1)[0, 1] == pytest.approx(sk.predict_proba(X1)[0, 1], abs=1e-15)
    assert mlp.loss_curve_ == pytest.approx(sk.loss_curve_, rel=1e-14)


@no_convergence_warning
def test_edited_coefs_are_used_by_predict_partial_fit_and_warm_start():
    params = dict(hidden_layer_sizes=(6,), solver="sgd", batch_size=32, max_iter=2)
    ours, theirs = _pair("multiclass", random_state=0, warm_start=True, **params)
    y = TARGETS["multiclass"]
    ours.fit(X, y)
    theirs.fit(X, y)
    # in place: predict uses the edit
    for est in (ours, theirs):
        est.coefs_[1][:] *= 0.5
        est.intercepts_[0][0] = 0.3
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-12)
    net_w = ours.network_.get_weights()
    np.testing.assert_array_equal(net_w[1][0], ours.coefs_[1].T)
    # assignment: partial_fit and warm start continue from it, as scikit-learn's do
    rng = np.random.RandomState(5)
    new = [rng.uniform(-0.3, 0.3, c.shape) for c in ours.coefs_]
    ours.coefs_ = [c.copy() for c in new]
    theirs.coefs_ = [c.copy() for c in new]
    ours.partial_fit(X, y)
    theirs.partial_fit(X, y)
    assert _max_weight_diff(ours, theirs) < 1e-12
    ours.coefs_[0][0, 0] += 1.0
    theirs.coefs_[0][0, 0] += 1.0
    ours.fit(X, y)
    theirs.fit(X, y)
    assert _max_weight_diff(ours, theirs) < 1e-12
    # stochastic solvers update the arrays in place, as scikit-learn's
    held = ours.coefs_[0]
    ours.partial_fit(X, y)
    assert ours.coefs_[0] is held
    # a wrong shape is refused, saying what was expected
    ours.coefs_[0] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"the fitted network needs \[\(5, 6\), \(6, 3\)\]"):
        ours.predict(X)


@no_convergence_warning
def test_unchanged_coefs_are_not_sent_again(monkeypatch):
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=2, random_state=0).fit(
        X, TARGETS["binary"]
    )
    net = clf._net
    sent = []
    real = type(net).set_weights

    def counting(self, weights):
        sent.append(1)
        return real(self, weights)

    monkeypatch.setattr(type(net), "set_weights", counting)
    for _ in range(3):
        clf.predict(X)
    assert sent == []
    clf.coefs_[0][0, 0] += 0.1
    clf.predict(X)
    clf.predict(X)
    assert sent == [1]


# --------------------------------------------------------------------------------------------
# Divergence
# --------------------------------------------------------------------------------------------
def _iris():
    Xi, yi = load_iris(return_X_y=True)
    return Xi, yi


def test_divergence_without_early_stopping_raises_sklearns_error():
    # scikit-learn's test_nonfinite_params
    rng = np.random.RandomState(0)
    Xn = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    yn = rng.standard_normal(size=10)
    reg = MLPRegressor()
    with pytest.raises(ValueError) as info:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            reg.fit(Xn, yn)
    assert str(info.value).startswith(NON_FINITE)
    assert all(np.isfinite(c).all() for c in reg.coefs_ + reg.intercepts_)


def test_divergence_with_early_stopping_keeps_the_best_epoch():
    # scikit-learn's test_mlp_diverging_loss
    Xi, yi = _iris()
    params = dict(
        hidden_layer_sizes=100,
        activation="identity",
        solver="sgd",
        alpha=0.0001,
        learning_rate="constant",
        learning_rate_init=1,
        shuffle=True,
        max_iter=20,
        early_stopping=True,
        n_iter_no_change=10,
        random_state=0,
    )
    mlp = MLPRegressor(**params)
    with pytest.warns(ConvergenceWarning, match="Solver produced non-finite parameter weights"):
        mlp.fit(Xi, yi)
    assert str(mlp.validation_scores_[-1]) == str(np.nan)
    assert isinstance(mlp.validation_scores_[-1], float)
    assert all(np.isfinite(c).all() for c in mlp.coefs_ + mlp.intercepts_)
    assert np.isfinite(mlp.predict(Xi)).all()
    # the weights are those of the best validation epoch: a run stopped right after it holds
    # the same ones
    best = int(np.nanargmax(mlp.validation_scores_)) + 1
    assert mlp.best_validation_score_ == np.nanmax(mlp.validation_scores_)
    short = MLPRegressor(**dict(params, max_iter=best))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        short.fit(Xi, yi)
    assert _max_weight_diff(mlp, short) == 0.0


# --------------------------------------------------------------------------------------------
# Larger than memory
# --------------------------------------------------------------------------------------------
def _memmap(tmp_path, n, d, seed=0):
    rng = np.random.RandomState(seed)
    path = tmp_path / "X.f64"
    Xm = np.memmap(path, dtype=np.float64, mode="w+", shape=(n, d))
    for start in range(0, n, 1000):
        stop = min(start + 1000, n)
        Xm[start:stop] = rng.randn(stop - start, d)
    Xm.flush()
    Xm = np.memmap(path, dtype=np.float64, mode="r", shape=(n, d))
    w = np.linspace(-1, 1, d)
    y = (np.asarray(Xm) @ w > 0).astype(int)
    return Xm, y


@no_convergence_warning
def test_partial_fit_over_memmap_chunks_and_a_generator(tmp_path):
    Xm, y = _memmap(tmp_path, 6000, 10)
    chunk = 500  # the file is 12 times larger than a chunk

    def chunks():
        for start in range(0, Xm.shape[0], chunk):
            yield Xm[start : start + chunk], y[start : start + chunk]

    params = dict(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0)
    from_file = MLPClassifier(**params)
    from_generator = MLPClassifier(**params)
    for _ in range(3):
        for start in range(0, Xm.shape[0], chunk):
            from_file.partial_fit(
                Xm[start : start + chunk], y[start : start + chunk], classes=[0, 1]
            )
        for Xc, yc in chunks():
            from_generator.partial_fit(Xc, yc, classes=[0, 1])
    assert from_file.score(Xm, y) > 0.95
    assert _max_weight_diff(from_file, from_generator) == 0.0
    # the same as partial_fit over the chunks held in memory
    in_memory = MLPClassifier(**params)
    Xa = np.array(Xm)
    for _ in range(3):
        for start in range(0, Xa.shape[0], chunk):
            in_memory.partial_fit(
                Xa[start : start + chunk], y[start : start + chunk], classes=[0, 1]
            )
    assert _max_weight_diff(from_file, in_memory) == 0.0


@no_convergence_warning
@pytest.mark.parametrize("shuffle", [True, False])
def test_fit_reads_a_memmap_without_copying_it(tmp_path, shuffle, monkeypatch):
    import ferrinet.sklearn as fs

    monkeypatch.setattr(fs, "_GATHER_BYTES", 1 << 20)
    Xm, y = _memmap(tmp_path, 20000, 100)  # 16 MB on disk
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, shuffle=shuffle, random_state=0)
    tracemalloc.start()
    try:
        clf.fit(Xm, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # NumPy's allocations are traced: no copy of X (16 MB) was made, only gathers of ~1 MB
    # (measured peak: ~1.5 MB shuffled, ~0.5 MB in order)
    assert peak < Xm.nbytes / 4, peak
    # and the result is the one from the same data in memory
    ref = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, shuffle=shuffle, random_state=0)
    ref.fit(np.array(Xm), y)
    assert _max_weight_diff(clf, ref) == 0.0


@no_convergence_warning
def test_best_weights_are_copied_only_with_early_stopping():
    """The best epoch's weights (a whole copy) exist only when early stopping needs them; a
    warm start that turns it on starts from the weights it continues."""
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=2, random_state=0)
    clf.fit(X, TARGETS["binary"])
    assert clf._best_weights is None
    clf.set_params(warm_start=True, early_stopping=True, max_iter=3)
    clf.fit(X, TARGETS["binary"])
    assert clf._best_weights is not None and len(clf.validation_scores_) == 3
    best = int(np.argmax(clf.validation_scores_))
    assert clf.best_validation_score_ == clf.validation_scores_[best]


@no_convergence_warning
def test_the_core_compares_and_writes_coefs_in_place():
    """_layer_equals reads coefs_ as they are (any layout, float32 or float64, compared as
    np.array_equal does); _copy_layer_into writes the transposed weights into any writeable
    array of the network's dtype and refuses others."""
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=2, random_state=0).fit(
        X, TARGETS["binary"]
    )
    net, c, b = clf._net, clf.coefs_[0], clf.intercepts_[0]
    assert net._layer_equals(0, c, b) and net._layer_equals(1, *[clf.coefs_[1], clf.intercepts_[1]])
    assert net._layer_equals(0, np.asfortranarray(c), b)
    assert net._layer_equals(0, np.ascontiguousarray(net.get_weights()[0][0].T), b)
    assert not net._layer_equals(1, c, b)  # another layer's shape
    assert not net._layer_equals(0, c.tolist(), b)
    assert not net._layer_equals(0, c.astype(np.float32), b)  # rounded: values differ
    small = np.round(c * 64) / 64  # exact in float32 too
    clf.coefs_[0] = small
    clf.predict(X)  # sent to the network
    assert net._layer_equals(0, small.astype(np.float32), b)  # same values, float32
    edited = small.copy()
    edited[4, 5] = np.nextafter(edited[4, 5], 1.0)
    assert not net._layer_equals(0, edited, b)
    nan = small.copy()
    nan[0, 0] = np.nan
    assert not net._layer_equals(0, nan, b)
    assert not net._layer_equals(0, small, b + 1.0)
    out_c, out_b = np.zeros((5, 6), order="F"), np.zeros(12)[::2]
    net._copy_layer_into(0, out_c, out_b)
    np.testing.assert_array_equal(out_c, small)
    np.testing.assert_array_equal(out_b, b)
    with pytest.raises(TypeError, match=r"coef must be a writeable \(5, 6\) NumPy array"):
        net._copy_layer_into(0, np.zeros((5, 6), dtype=np.float32), out_b)
    frozen = np.zeros((5, 6))
    frozen.flags.writeable = False
    with pytest.raises(TypeError, match="writeable"):
        net._copy_layer_into(0, frozen, out_b)
    with pytest.raises(ValueError, match=r"layer 0 needs coef \(5, 6\)"):
        net._copy_layer_into(0, np.zeros((6, 5)), out_b)
    with pytest.raises(IndexError, match="layer index 2"):
        net._layer_equals(2, c, b)


@no_convergence_warning
def test_pickles_from_before_coefs_were_the_model_still_load():
    import pickle

    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(
        X, TARGETS["binary"]
    )
    state = dict(clf.__getstate__())
    assert "_synced" not in state  # no copy of coefs_ is kept (nor pickled)
    # the layout of versions between: a copy of coefs_ in "_synced", dropped on loading
    between = MLPClassifier.__new__(MLPClassifier)
    between.__setstate__({**state, "_synced": [np.copy(c) for c in clf.coefs_]})
    assert "_synced" not in between.__dict__
    np.testing.assert_array_equal(between.predict_proba(X), clf.predict_proba(X))
    # the layout of earlier versions: the network in "network_", no snapshot
    state["network_"] = state.pop("_net")
    old = MLPClassifier.__new__(MLPClassifier)
    old.__setstate__(state)
    np.testing.assert_array_equal(old.predict_proba(X), clf.predict_proba(X))
    twin = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(twin.predict_proba(X), clf.predict_proba(X))
    twin.partial_fit(X, TARGETS["binary"])
    clf.partial_fit(X, TARGETS["binary"])
    assert _max_weight_diff(twin, clf) == 0.0
