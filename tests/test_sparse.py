"""Sparse inputs (scipy.sparse CSR / CSC): the first layer runs over the nonzeros, and every
result equals the dense path's on the same data to rounding; bad sparse input is a ValueError
or TypeError naming what is wrong, and leaves the model unchanged."""

import os
import subprocess
import sys

import ferrinet
import numpy as np
import pytest

sp = pytest.importorskip("scipy.sparse")

RNG = np.random.default_rng(0)
N, D, K = 400, 120, 4
X_SP = sp.random(N, D, density=0.05, format="csr", random_state=1)
X_DENSE = X_SP.toarray()
Y = (np.asarray(X_SP @ RNG.standard_normal((D, K))).argmax(axis=1)).astype(np.int64)

# Measured: 1e-16 (float64) after 5 Adam epochs; the tolerances leave room for other CPUs'
# summation (the sparse sums run in another order than the GEMM's), not for a wrong result.
TOL = {"float64": 1e-12, "float32": 1e-5}


def _max_diff(a, b):
    return max(
        max(np.abs(wa - wb).max(), np.abs(ba - bb).max())
        for (wa, ba), (wb, bb) in zip(a.get_weights(), b.get_weights())
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("fmt", ["csr", "csc", "csr_array"])
def test_fit_and_predict_equal_the_dense_path(dtype, fmt):
    X = {"csr": X_SP, "csc": X_SP.tocsc(), "csr_array": sp.csr_array(X_SP)}[fmt]
    a = ferrinet.NeuralNetwork([D, 32, 16, K], loss="cross_entropy", seed=1, dtype=dtype)
    b = a.copy()
    assert np.abs(a.predict(X) - b.predict(X_DENSE)).max() <= TOL[dtype]
    opts = dict(epochs=5, batch_size=32, optimizer="adam", learning_rate=1e-2, verbose=0)
    opts.update(dropout=0.1, l2=1e-4, clip_norm=5.0)
    ha = a.fit(X, Y, **opts)
    hb = b.fit(X_DENSE, Y, **opts)
    assert _max_diff(a, b) <= TOL[dtype]
    assert np.allclose(ha.loss, hb.loss, rtol=TOL[dtype], atol=0)
    assert ha.loss[-1] < ha.loss[0]  # it learned something
    assert np.abs(a.predict(X) - b.predict(X_DENSE)).max() <= TOL[dtype]
    assert a.predict(X).dtype == np.dtype(dtype)
    assert abs(a.compute_loss(X, Y) - b.compute_loss(X_DENSE, Y)) <= TOL[dtype]


def test_threads_give_the_same_bits_and_sgd_matches_dense():
    nets = []
    for threads in (1, 3):
        net = ferrinet.NeuralNetwork([D, 64, K], loss="cross_entropy", seed=2)
        net.n_threads = threads
        net.fit(X_SP, Y, epochs=3, batch_size=400, optimizer="sgd", learning_rate=0.1, verbose=0)
        nets.append(net)
    assert _max_diff(nets[0], nets[1]) == 0.0
    assert np.array_equal(nets[0].predict(X_SP), nets[1].predict(X_SP))
    dense = ferrinet.NeuralNetwork([D, 64, K], loss="cross_entropy", seed=2)
    dense.fit(X_DENSE, Y, epochs=3, batch_size=400, optimizer="sgd", learning_rate=0.1, verbose=0)
    assert _max_diff(nets[0], dense) <= 1e-12


def test_train_epoch_with_sample_weights_and_mse():
    T = RNG.standard_normal((N, 2))
    w = RNG.random(N)
    a = ferrinet.NeuralNetwork([D, 8, 2], activation="tanh", loss="mse", seed=3)
    b = a.copy()
    la = a.train_epoch(X_SP, T, batch_size=50, optimizer="rmsprop", seed=4, sample_weight=w)
    lb = b.train_epoch(X_DENSE, T, batch_size=50, optimizer="rmsprop", seed=4, sample_weight=w)
    assert abs(la - lb) <= 1e-12 and _max_diff(a, b) <= 1e-12


def _csr(indptr, indices, data, shape):
    m = sp.csr_matrix(shape)  # built without scipy's own checks, as a broken matrix arrives
    m.indptr, m.indices, m.data = (np.asarray(indptr), np.asarray(indices), np.asarray(data))
    return m


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda: _csr([0, 1, 2], [0, 0], [1.0, np.nan], (2, 3)), r"finite, got NaN at \[1, 0\]"),
        (lambda: _csr([0, 2, 2], [1, 1], [1.0, 1.0], (2, 3)), "appears twice"),
        (lambda: _csr([0, 1, 2], [0, 3], [1.0, 1.0], (2, 3)), "out of range"),
        (lambda: _csr([0, 2, 1], [0, 1], [1.0, 1.0], (2, 3)), "end at the number of nonzeros"),
        (lambda: _csr([0, 1], [0], [1.0], (2, 3)), "indptr of 3 entries"),
        (lambda: _csr([0, -5, 1], [0], [1.0], (2, 3)), "decrease"),
        (
            lambda: _csr(np.array([0, 2**63, 1], dtype=np.uint64), [0], [1.0], (2, 3)),
            "overflows int64",
        ),
        (lambda: sp.random(2, 5, density=0.5, format="csr"), "takes 3 inputs"),
    ],
)
def test_bad_sparse_input_is_a_value_error_and_changes_nothing(bad, message):
    net = ferrinet.NeuralNetwork([3, 4, 2], loss="cross_entropy", seed=0)
    before = net.get_weights()
    for call in (
        lambda X: net.predict(X),
        lambda X: net.compute_loss(X, [0, 1][: X.shape[0]]),
        lambda X: net.train_epoch(X, [0, 1][: X.shape[0]], batch_size=1, seed=0),
    ):
        with pytest.raises(ValueError, match=message):
            call(bad())
    assert _max_diff(net, ferrinet.NeuralNetwork([3, 4, 2], loss="cross_entropy", seed=0)) == 0
    assert all(np.array_equal(w, v) for (w, _), (v, _) in zip(before, net.get_weights()))
    assert net.training_state is None


def test_unsorted_indices_are_sorted_and_other_formats_refused():
    X = _csr([0, 2, 3], [2, 0, 1], [1.0, 2.0, 3.0], (2, 3))
    X.has_sorted_indices = False
    net = ferrinet.NeuralNetwork([3, 4, 2], seed=0)
    assert np.allclose(net.predict(X), net.predict(np.array([[2.0, 0, 1.0], [0, 3.0, 0]])))
    assert list(X.indices) == [2, 0, 1]  # the caller's matrix is left as it was
    with pytest.raises(TypeError, match="format 'coo' is not supported"):
        net.predict(X.tocoo())
    with pytest.raises(TypeError, match="real numbers"):
        net.predict(sp.csr_matrix(np.array([[1j, 0, 0]])))


def test_sklearn_estimators_on_sparse_equal_dense():
    from ferrinet.sklearn import MLPClassifier, MLPRegressor

    pytest.importorskip("sklearn")
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for make, y in (
            (lambda: MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0), Y),
            (lambda: MLPRegressor(hidden_layer_sizes=(16,), max_iter=5, random_state=0), Y * 1.0),
        ):
            a, b = make().fit(X_SP, y), make().fit(X_DENSE, y)
            for ca, cb in zip(a.coefs_, b.coefs_):
                assert np.abs(ca - cb).max() <= 1e-12
            pa, pb = a.predict(X_SP.tocsc()), b.predict(X_DENSE)
            assert np.array_equal(pa, pb) if pa.dtype.kind == "i" else np.abs(pa - pb).max() < 1e-12
            assert abs(a.score(X_SP, y) - b.score(X_DENSE, y)) <= 1e-12
            a.partial_fit(X_SP, y)
            b.partial_fit(X_DENSE, y)
            assert np.abs(a.coefs_[0] - b.coefs_[0]).max() <= 1e-12
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
        clf.fit(X_SP, Y)
        assert np.allclose(clf.predict_proba(X_SP), clf.predict_proba(X_DENSE), atol=1e-12)
        es = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, early_stopping=True, random_state=0)
        es.fit(X_SP, Y)
        es_dense = MLPClassifier(
            hidden_layer_sizes=(8,), max_iter=3, early_stopping=True, random_state=0
        ).fit(X_DENSE, Y)
        assert np.allclose(es.validation_scores_, es_dense.validation_scores_)


def test_fit_counts_running_metrics_in_the_epoch_as_the_dense_path():
    """fit on sparse X makes no pass over the training data besides the epochs (no check by
    compute_loss, no predict for the accuracy): its loss and accuracy are the epoch's running
    values, counted in Rust from each batch's outputs, as for dense X."""
    calls = []
    sparse_net = ferrinet.NeuralNetwork([D, 32, K], loss="cross_entropy", seed=3)
    dense_net = sparse_net.copy()
    cls = type(sparse_net)
    spy = pytest.MonkeyPatch()
    for name in ("predict", "compute_loss", "_predict_csr", "_compute_loss_csr"):
        original = getattr(cls, name)
        spy.setattr(
            cls,
            name,
            lambda self, *a, _o=original, _n=name, **k: (calls.append(_n), _o(self, *a, **k))[1],
        )
    try:
        opts = dict(epochs=3, batch_size=50, optimizer="adam", learning_rate=1e-2, verbose=0)
        hs = sparse_net.fit(X_SP, Y, **opts)
    finally:
        spy.undo()
    assert calls == []
    hd = dense_net.fit(X_DENSE, Y, **opts)
    assert np.allclose(hs.loss, hd.loss, rtol=1e-12, atol=0)
    assert hs.metrics["accuracy"] == hd.metrics["accuracy"]
    # one batch of all the data: the running accuracy is that of the weights before the step
    one = ferrinet.NeuralNetwork([D, 32, K], loss="cross_entropy", seed=4)
    before = np.mean(one.predict(X_SP).argmax(axis=1) == Y)
    h = one.fit(X_SP, Y, epochs=1, batch_size=N, optimizer="sgd", learning_rate=5.0, verbose=0)
    assert h.metrics["accuracy"][0] == before
    assert h.metrics["accuracy"][0] != one.evaluate(X_SP, Y)["accuracy"]


@pytest.mark.parametrize("warm_start", [False, True])
def test_a_nan_in_the_last_stored_value_leaves_everything_unchanged(warm_start):
    """The first epoch finds the NaN (the last value of the CSR data) before it changes
    anything, and fit fails with the model as it was: weights, optimizer state, step count,
    generator and schedule (a later fit equals a twin's), as for dense X."""
    from ferrinet import schedules

    kwargs = dict(optimizer="adam", learning_rate=0.01, batch_size=16, verbose=0)
    kwargs["schedule"] = schedules.StepLR(step_size=1, gamma=0.5)
    net = ferrinet.NeuralNetwork([D, 16, K], loss="cross_entropy", seed=7)
    twin = net.copy()
    for n in (net, twin):
        n.fit(X_SP, Y, epochs=2, seed=3, **kwargs)
    info = net._training_info()
    run = net.training_state
    bad = X_SP.copy()
    bad.data[-1] = np.nan
    last_row = int(np.searchsorted(bad.indptr, bad.nnz - 1, side="right") - 1)
    match = rf"NaN at \[{last_row}, {bad.indices[-1]}\]"
    with pytest.raises(ValueError, match=match):
        net.fit(bad, Y, epochs=3, warm_start=warm_start, **kwargs)
    assert _max_diff(net, twin) == 0.0
    assert net._training_info() == info
    assert net.training_state is run
    h_net = net.fit(X_SP, Y, epochs=2, warm_start=True, **{**kwargs, "schedule": None})
    h_twin = twin.fit(X_SP, Y, epochs=2, warm_start=True, **{**kwargs, "schedule": None})
    assert _max_diff(net, twin) == 0.0
    assert h_net.loss == h_twin.loss and h_net.lr == h_twin.lr


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_diverging_sparse_epoch_stops_before_the_step_that_broke_a_weight(dtype):
    """With no snapshot of the weights (each step is proven finite before it is taken, or
    taken on a copy and undone), the promise holds as before: the network and the training
    state are those of an epoch over just the batches before the step that broke a weight.
    Here SGD's weight decay (lr * wd = 3) doubles the weights of a feature no row has, from
    a value 2^7 steps below the largest float: the 7th step overflows them while the loss
    stays finite."""
    X = X_SP.tolil()
    X[:, 0] = 0
    X = X.tocsr()
    X.eliminate_zeros()
    net = ferrinet.NeuralNetwork([D, 16, K], loss="cross_entropy", seed=5, dtype=dtype)
    (W, b), rest = net.get_weights()[0], net.get_weights()[1:]
    W = W.copy()
    W[:, 0] = np.finfo(dtype).max / 115
    net.set_weights([(W, b)] + rest)
    start = net.copy()
    opts = dict(batch_size=20, optimizer="sgd", learning_rate=1.0, weight_decay=3.0)
    opts.update(shuffle=False, seed=0)
    with pytest.raises(ferrinet.DivergenceError, match="step 6 of this call: a weight"):
        net.train_epoch(X, Y, **opts)
    assert net.training_state.t == 6
    twin = start.copy()
    twin.train_epoch(X[:120], Y[:120], **opts)
    assert _max_diff(net, twin) == 0.0
    assert net._training_info() == {**twin._training_info(), "epochs": 0}
    assert all(np.isfinite(w).all() and np.isfinite(b).all() for w, b in net.get_weights())


_MEMORY_CHILD = r"""
import numpy as np, scipy.sparse as sp, ferrinet
def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
X = sp.random(64, 200_000, density=1e-4, format="csr", random_state=0)
y = np.arange(64) % 2
net = ferrinet.NeuralNetwork([200_000, 20, 2], loss="cross_entropy", seed=0)
opts = dict(batch_size=16, shuffle=False)
def peak_growth(**more):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = status("VmRSS")
    net.train_epoch(X, y, **opts, **more)
    return status("VmHWM") - base
first = peak_growth(optimizer=OPTIMIZER, seed=0)  # the state and workspace are made here
print(first, peak_growth())
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux /proc only")
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_sparse_epoch_keeps_no_snapshot_of_the_weights_and_state(optimizer):
    """An epoch on CSR inputs after the first allocates next to nothing: no copy of the
    weights and the optimizer state for the divergence guard (4,000,000 weights: P = 32 MB
    each copy, and Adam's state twice that). The first epoch makes the optimizer state (2 P
    for Adam's m and v, none for plain SGD) and nothing as large as the first layer's dW:
    each neuron's row of it is made and applied at once (P more before)."""
    code = _MEMORY_CHILD.replace("OPTIMIZER", repr(optimizer))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    first, growth = map(int, out.stdout.strip().splitlines()[-1].split())
    P = 4_000_000 * 8
    assert growth < P // 4, f"peak growth {growth / 2**20:.1f} MiB"
    state = {"adam": 2 * P, "sgd": 0}[optimizer]
    assert first < state + P // 4, f"first epoch's peak growth {first / P:.2f} P"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "optimizer",
    [
        dict(optimizer="adam", learning_rate=1e-2),
        dict(optimizer="adam", learning_rate=1e-2, amsgrad=True, weight_decay=1e-3),
        dict(optimizer="adamw", learning_rate=1e-2, weight_decay=1e-2),
        dict(optimizer="sgd", learning_rate=0.1),
        dict(optimizer="sgd", learning_rate=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
        dict(optimizer="sgd", learning_rate=0.1, momentum=0.5, dampening=0.2),
    ],
)
@pytest.mark.parametrize("threads", [1, 3])
def test_the_row_by_row_update_has_the_bits_of_the_whole_gradients(dtype, optimizer, threads):
    """SGD and Adam steps on CSR inputs compute the first layer's dW a neuron at a time and
    apply each row at once; clipping (whose norm needs all of dW first) computes it whole and
    then applies it. A max_norm no gradient reaches clips nothing, so both paths take the
    same steps: the same bits, with L2, dropout and several threads."""
    a = ferrinet.NeuralNetwork([D, 24, K], loss="cross_entropy", seed=3, dtype=dtype)
    a.n_threads = threads
    b = a.copy()
    b.n_threads = threads
    opts = dict(batch_size=16, seed=1, l2=1e-3, dropout=0.2, **optimizer)
    for _ in range(2):
        a.train_epoch(X_SP, Y, **opts)
        b.train_epoch(X_SP, Y, clip_norm=1e300, **opts)
    assert _max_diff(a, b) == 0.0
    assert a._training_info() == b._training_info()


_SKLEARN_MEMORY_CHILD = r"""
import warnings
import numpy as np, scipy.sparse as sp
from ferrinet.sklearn import MLPClassifier
def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
X = sp.random(64, 200_000, density=1e-4, format="csr", random_state=0)
y = np.arange(64) % 2
warnings.simplefilter("ignore")
clf = MLPClassifier(hidden_layer_sizes=(20,), max_iter=2, random_state=0)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS")
clf.fit(X, y)
print(status("VmHWM") - base)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux /proc only")
def test_sklearn_fit_on_a_wide_sparse_matrix_holds_few_copies_of_the_weights():
    """ferrinet.sklearn's Adam fit with a large first layer (4,000,000 weights, P = 32 MB a
    copy): its peak growth is the network's weights, coefs_ and Adam's m and v (4 P), and
    little else: no copy of coefs_ to see edits by (the core compares them in place), no
    best-epoch copy without early stopping, no intermediate copy while coefs_ are written, no
    whole first-layer gradient (8 P before)."""
    pytest.importorskip("sklearn")
    out = subprocess.run(
        [sys.executable, "-c", _SKLEARN_MEMORY_CHILD], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    growth = int(out.stdout.strip().splitlines()[-1])
    P = 4_000_000 * 8
    assert growth < 4.5 * P, f"peak growth {growth / P:.2f} P"


_GATHER_CHILD = r"""
import warnings
import numpy as np, scipy.sparse as sp
from ferrinet.sklearn import MLPClassifier
def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
X = sp.random(20_000, 1_000, density=0.1, format="csr", random_state=0)
y = np.arange(20_000) % 3
warnings.simplefilter("ignore")
clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS")
clf.fit(X, y)
print((status("VmHWM") - base) / (X.data.nbytes + X.indices.nbytes))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux /proc only")
def test_sklearn_fit_gathers_a_small_piece_of_a_sparse_matrix_at_a_time():
    """A shuffled epoch over a 23 MB CSR matrix (a small network: the data dominate) gathers
    its rows 4 MiB at a time (_SPARSE_GATHER_BYTES), each gather let go before the next:
    fit's peak growth is a small fraction of the matrix (0.52 of it with 16 MiB gathers, two
    alive at once)."""
    pytest.importorskip("sklearn")
    out = subprocess.run([sys.executable, "-c", _GATHER_CHILD], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    share = float(out.stdout.strip().splitlines()[-1])
    assert share < 0.25, f"peak growth {share:.2f} x the matrix"
