"""scikit-learn's own estimator checks on ferrinet.sklearn's MLPClassifier and MLPRegressor.

``parametrize_with_checks`` runs scikit-learn's API checks (cloning, parameters, input
validation, fitted attributes, sample weights, dtypes, multilabel / multi-output formats,
pickling, ...) on each instance below, with ``xfail_strict=True``: a check listed as expected
to fail that passes is an error too, so the list below stays exact.

Expected failures (``ferrinet.sklearn.expected_failed_checks``, with the reasons):

- none with the default ``dtype='float64'``;
- ``dtype='float32'``: ``check_sample_weight_equivalence_on_dense_data`` (and its sparse twin). Fitting with
  integer sample weights must equal fitting on repeated samples to rtol=1e-7; in float32 the
  two runs differ by 1-2 ulps (measured 2.8e-7 relative), the tolerance is below float32's
  resolution (eps 1.2e-7). In float64 the same check passes.

And, while ``ferrinet.NeuralNetwork`` cannot be pickled (``__reduce__`` is being added in
python/ferrinet/network.py by another change), ``check_estimators_pickle`` is expected to
fail: the fitted estimator holds its network in ``network_``. The probe below decides, so
once pickling lands the check runs normally (and, being strict, the entry cannot go stale).

Instances: scikit-learn's own test uses ``max_iter=100`` for its MLPs; so do we, which keeps
all the checks of the four instances at ~25 s on the 2-core CI machine. The checks fit on
small random data where 100 epochs do not converge, so ``ConvergenceWarning`` (turned into
an error by the project's ``filterwarnings = error``) is ignored for this test only.
pandas-based checks (feature names, DataFrame input) are skipped by scikit-learn when pandas
is not installed.
"""

import pickle

import pytest

pytest.importorskip("sklearn")

import ferrinet  # noqa: E402
from ferrinet.sklearn import MLPClassifier, MLPRegressor, expected_failed_checks  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402


def _network_pickles():
    try:
        pickle.loads(pickle.dumps(ferrinet.NeuralNetwork([2, 2, 1])))
    except Exception:  # noqa: BLE001 - any failure means "cannot pickle yet"
        return False
    return True


_PICKLE_PENDING = (
    "ferrinet.NeuralNetwork cannot be pickled yet (NeuralNetwork.__reduce__ is being added "
    "in python/ferrinet/network.py); the fitted estimator holds it in network_"
)


def _expected_failures(estimator):
    failures = expected_failed_checks(estimator)
    if not _network_pickles():
        failures["check_estimators_pickle"] = _PICKLE_PENDING
    return failures


ESTIMATORS = [
    MLPClassifier(max_iter=100),
    MLPRegressor(max_iter=100),
    # the paths the defaults do not take: SGD with Nesterov momentum, two hidden layers with
    # different activations (one scikit-learn does not have), and a float32 network
    MLPClassifier(
        hidden_layer_sizes=(20, 10),
        activation=["tanh", "leaky_relu"],
        solver="sgd",
        max_iter=100,
    ),
    MLPRegressor(dtype="float32", max_iter=100),
    # L-BFGS (full batch, scipy's driver, no partial_fit), kept small: every check fits
    MLPClassifier(solver="lbfgs", hidden_layer_sizes=(10,), max_iter=100),
    MLPRegressor(solver="lbfgs", hidden_layer_sizes=(10,), max_iter=100),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures, xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_expected_failures_are_only_the_documented_ones():
    assert expected_failed_checks(MLPClassifier()) == {}
    assert expected_failed_checks(MLPRegressor()) == {}
    assert set(expected_failed_checks(MLPRegressor(dtype="float32"))) == {
        "check_sample_weight_equivalence_on_dense_data",
        "check_sample_weight_equivalence_on_sparse_data",
    }
