"""Bad input: every case raises a clear exception and leaves the model bit-for-bit unchanged.

Each bad input is one parametrised case. Every case asserts
  * the exception class,
  * a ``match=`` on the message, which must say what was expected and what was given,
  * that ``get_weights()`` is bit-for-bit the same afterwards (``np.array_equal`` on every W
    and b, same shapes and dtypes), for every method the bad input can reach, including the
    mutating ones (``backward``, ``train``, ``set_weights``).

Shapes in messages are matched as ``[2, 2, 2]`` or ``(2, 2, 2)`` alike.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from ferrinet import NeuralNetwork

NAN = float("nan")
INF = float("inf")


def snapshot(net):
    return [(w.copy(), b.copy()) for w, b in net.get_weights()]


def assert_unchanged(net, before):
    after = net.get_weights()
    assert len(after) == len(before)
    for (w0, b0), (w1, b1) in zip(before, after):
        assert w1.dtype == w0.dtype == np.float64 and b1.dtype == b0.dtype == np.float64
        assert w1.shape == w0.shape and b1.shape == b0.shape
        assert np.array_equal(w0, w1), "weights changed by a failing call"
        assert np.array_equal(b0, b1), "biases changed by a failing call"


def raises_and_unchanged(net, exc, match, call):
    before = snapshot(net)
    with pytest.raises(exc, match=match):
        call()
    assert_unchanged(net, before)


# --------------------------------------------------------------------------------------------
# Bad data (X, Y): every method the data reaches.
# --------------------------------------------------------------------------------------------

NETS = {
    "mse1": dict(sizes=[2, 8, 1], loss="mse"),
    "mse3": dict(sizes=[2, 8, 3], loss="mse"),
    "bce": dict(sizes=[2, 8, 1], loss="binary_cross_entropy"),
    "ce": dict(sizes=[2, 8, 3], loss="cross_entropy"),
}


def make_net(key, seed=3):
    kw = dict(NETS[key])
    return NeuralNetwork(kw.pop("sizes"), seed=seed, **kw)


_X = np.array([[0.5, -1.0], [1.5, 2.0], [-0.25, 0.75], [1.0, 0.0]])
_Y1 = np.array([0.5, -1.0, 2.0, 0.25])


def _x_with(value, at=(1, 0)):
    x = _X.copy()
    x[at] = value
    return x


# (id, net, X, Y, exception, match, reaches predict/forward)
DATA_CASES = [
    ("nan_in_X", "mse1", _x_with(NAN), _Y1, ValueError, r"finite, got NaN at \[1, 0\]", True),
    ("inf_in_X", "mse1", _x_with(INF), _Y1, ValueError, r"finite, got inf at \[1, 0\]", True),
    (
        "-inf_in_X",
        "mse1",
        _x_with(-INF, (3, 1)),
        _Y1,
        ValueError,
        r"finite, got -inf at \[3, 1\]",
        True,
    ),
    (
        "nan_in_Y",
        "mse1",
        _X,
        np.array([0.5, NAN, 2.0, 0.25]),
        ValueError,
        r"targets must be finite, got NaN at \[1, 0\]",
        False,
    ),
    (
        "zero_samples",
        "mse1",
        np.zeros((0, 2)),
        np.zeros((0,)),
        ValueError,
        r"got 0 samples: expected at least one row of 2 inputs",
        True,
    ),
    (
        "zero_features",
        "mse1",
        np.zeros((4, 0)),
        _Y1,
        ValueError,
        r"takes 2 inputs per sample, got 0",
        True,
    ),
    (
        "3d_X",
        "mse1",
        np.zeros((4, 2, 2)),
        _Y1,
        ValueError,
        r"(?i)x must be a 1-D sample \(2,\) or a 2-D batch \(n, 2\), got shape [\[(]4, 2, 2[\])]",
        True,
    ),
    (
        "0d_X",
        "mse1",
        np.float64(1.0),
        1.0,
        ValueError,
        r"(?i)x must be a 1-D sample \(2,\) or a 2-D batch \(n, 2\), got shape (\[\]|\(\))",
        True,
    ),
    (
        "wrong_feature_count",
        "mse1",
        np.ones((4, 3)),
        _Y1,
        ValueError,
        r"takes 2 inputs per sample, got 3",
        True,
    ),
    (
        "wrong_feature_count_1d_sample",
        "mse1",
        np.ones(3),
        1.0,
        ValueError,
        r"takes 2 inputs per sample, got 3",
        True,
    ),
    ("len_Y_ne_len_X", "mse1", _X, _Y1[:3], ValueError, r"got 4 samples but 3 targets", False),
    (
        "wrong_output_columns",
        "mse3",
        _X,
        np.zeros((4, 2)),
        ValueError,
        r"must be shape \(n, 3\), got shape [\[(]4, 2[\])]",
        False,
    ),
    (
        "class_index_out_of_range",
        "ce",
        _X,
        np.array([0, 1, 3, 2]),
        ValueError,
        r"class index 3 .*out of range: expected 0 <= class < 3",
        False,
    ),
    (
        "class_index_negative",
        "ce",
        _X,
        np.array([0, -1, 2, 2]),
        ValueError,
        r"class index -1 .*out of range: expected 0 <= class < 3",
        False,
    ),
    (
        "class_index_non_integer",
        "ce",
        _X,
        np.array([0.0, 1.5, 2.0, 1.0]),
        ValueError,
        r"class indices must be integers, got 1\.5",
        False,
    ),
    (
        "bce_target_above_1",
        "bce",
        _X,
        np.array([0.0, 1.5, 1.0, 0.5]),
        ValueError,
        r"targets in \[0, 1\], got 1\.5 at \[1, 0\]",
        False,
    ),
    (
        "bce_target_below_0",
        "bce",
        _X,
        np.array([0.0, 1.0, -0.5, 0.5]),
        ValueError,
        r"targets in \[0, 1\], got -0\.5 at \[2, 0\]",
        False,
    ),
    (
        "strings_X",
        "mse1",
        np.array([["a", "b"]] * 4),
        _Y1,
        TypeError,
        r"real numbers \(bool, int or float dtype\), got dtype <U1",
        True,
    ),
    (
        "strings_X_list",
        "mse1",
        [["1", "2"]] * 4,
        _Y1,
        TypeError,
        r"real numbers \(bool, int or float dtype\), got dtype <U1",
        True,
    ),
    (
        "object_X",
        "mse1",
        np.array([[1.0, None]] * 4, dtype=object),
        _Y1,
        TypeError,
        r"real numbers \(bool, int or float dtype\), got dtype object",
        True,
    ),
    (
        "strings_Y",
        "mse1",
        _X,
        np.array(["a", "b", "c", "d"]),
        TypeError,
        r"y must hold real numbers \(bool, int or float dtype\), got dtype <U1",
        False,
    ),
    (
        "object_Y",
        "mse1",
        _X,
        np.array([0.5, None, 2.0, 0.25], dtype=object),
        TypeError,
        r"y must hold real numbers \(bool, int or float dtype\), got dtype object",
        False,
    ),
    (
        "complex_X",
        "mse1",
        _X.astype(complex),
        _Y1,
        TypeError,
        r"real numbers \(bool, int or float dtype\), got dtype complex128",
        True,
    ),
    (
        "complex_Y",
        "mse1",
        _X,
        _Y1.astype(complex),
        TypeError,
        r"y must hold real numbers \(bool, int or float dtype\), got dtype complex128",
        False,
    ),
]

METHODS = ["forward", "predict", "compute_loss", "gradients", "backward", "train"]


def _call(net, method, x, y):
    if method == "forward":
        return net.forward(x)
    if method == "predict":
        return net.predict(x)
    if method == "compute_loss":
        return net.compute_loss(x, y)
    if method == "gradients":
        return net.gradients(x, y)
    if method == "backward":
        return net.backward(x, y, 0.1)
    if method == "train":
        return net.train(x, y, 2, 0.1)
    raise AssertionError(method)


_DATA_PARAMS = [
    pytest.param(case, method, id=f"{case[0]}-{method}")
    for case in DATA_CASES
    for method in METHODS
    if case[6] or method not in ("forward", "predict")
]


@pytest.mark.parametrize("case,method", _DATA_PARAMS)
def test_bad_data(case, method):
    _, key, x, y, exc, match, _ = case
    net = make_net(key)
    x_before = np.array(x, copy=True)
    raises_and_unchanged(net, exc, match, lambda: _call(net, method, x, y))
    # The failing call did not touch the caller's array either.
    if isinstance(x, np.ndarray) and x.dtype.kind in "fc":
        assert np.array_equal(x, x_before, equal_nan=True)


# --------------------------------------------------------------------------------------------
# learning_rate and epochs
# --------------------------------------------------------------------------------------------

LR_CASES = [
    pytest.param(0.0, r"learning_rate must be a finite number > 0, got 0\b", id="lr=0"),
    pytest.param(-0.1, r"learning_rate must be a finite number > 0, got -0\.1", id="lr=-0.1"),
    pytest.param(NAN, r"learning_rate must be a finite number > 0, got NaN", id="lr=nan"),
    pytest.param(INF, r"learning_rate must be a finite number > 0, got inf", id="lr=inf"),
]


@pytest.mark.parametrize("lr,match", LR_CASES)
@pytest.mark.parametrize("method", ["backward", "train"])
def test_bad_learning_rate(lr, match, method):
    net = make_net("mse1")
    if method == "backward":
        call = lambda: net.backward(_X, _Y1, lr)  # noqa: E731
    else:
        call = lambda: net.train(_X, _Y1, 3, lr)  # noqa: E731
    raises_and_unchanged(net, ValueError, match, call)


@pytest.mark.parametrize(
    "epochs,exc,match",
    [
        pytest.param(-1, ValueError, r"epochs must be >= 0, got -1", id="epochs=-1"),
        pytest.param(2.5, TypeError, r"epochs must be an int, got float", id="epochs=2.5"),
        pytest.param(True, TypeError, r"epochs must be an int, got bool", id="epochs=True"),
        pytest.param("3", TypeError, r"epochs must be an int, got str", id="epochs='3'"),
        # Beyond the list: an int too large for the machine must not be reported as "must be an
        # int, got int" (contradictory). ValueError/OverflowError naming the bound is expected.
        pytest.param(
            2**200,
            (ValueError, OverflowError),
            r"epochs.*(<|large|range|2\*\*)",
            id="epochs=2**200",
        ),
    ],
)
def test_bad_epochs(epochs, exc, match):
    net = make_net("mse1")
    raises_and_unchanged(net, exc, match, lambda: net.train(_X, _Y1, epochs, 0.1))


# --------------------------------------------------------------------------------------------
# Constructor
# --------------------------------------------------------------------------------------------

CTOR_CASES = [
    pytest.param(
        dict(sizes=[]), ValueError, r"at least the input and output sizes.*got \[\]", id="sizes=[]"
    ),
    pytest.param(
        dict(sizes=[0]), ValueError, r"positive integers, got 0 at position 0", id="sizes=[0]"
    ),
    pytest.param(
        dict(sizes=[2, 0, 1]),
        ValueError,
        r"positive integers, got 0 at position 1",
        id="sizes=[2,0,1]",
    ),
    pytest.param(
        dict(sizes=[-3]), ValueError, r"positive integers, got -3 at position 0", id="sizes=[-3]"
    ),
    pytest.param(
        dict(sizes=[2.5]),
        TypeError,
        r"sizes must be integers, got 2\.5 \(float\)",
        id="sizes=[2.5]",
    ),
    pytest.param(
        dict(sizes=[3]),
        ValueError,
        r"at least the input and output sizes.*got \[3\]",
        id="sizes=[3]",
    ),
    pytest.param(
        dict(sizes="abc"),
        TypeError,
        r"list of layer sizes like \[2, 8, 1\], got a str",
        id="sizes='abc'",
    ),
    pytest.param(
        dict(sizes=3), TypeError, r"list of layer sizes like \[2, 8, 1\], got int", id="sizes=3"
    ),
    # Beyond the list: a Python int too large for i128 must still be a size problem (the
    # 2**100 case already gives MemoryError "cannot be allocated"), not "must be integers, got int".
    pytest.param(
        dict(sizes=[2**200, 1]),
        MemoryError,
        r"2\*\*200|1606938044258990275541962",
        id="sizes=[2**200,1]",
    ),
    pytest.param(
        dict(sizes=[2, 8, 1], activation="foo"),
        ValueError,
        r"unknown activation [\"']foo[\"'].*'relu'",
        id="activation='foo'",
    ),
    pytest.param(
        dict(sizes=[2, 8, 1], activation=["foo"]),
        ValueError,
        r"unknown activation [\"']foo[\"'].*'relu'",
        id="activation=['foo']",
    ),
    pytest.param(
        dict(sizes=[2, 8, 1], activation=3),
        TypeError,
        r"activation must be a name or a list of names.*got int",
        id="activation=3",
    ),
    pytest.param(
        dict(sizes=[2, 8, 1], loss="foo"),
        ValueError,
        r"unknown loss [\"']foo[\"'].*'mse', 'binary_cross_entropy', 'cross_entropy'",
        id="loss='foo'",
    ),
    pytest.param(
        dict(sizes=[2, 8, 1], output_activation="foo"),
        ValueError,
        r"unknown activation [\"']foo[\"'].*'sigmoid'",
        id="output_activation='foo'",
    ),
    pytest.param(
        dict(sizes=[2, 8, 1], activation="softmax"),
        ValueError,
        r"softmax is only for the output layer.*hidden activations were \[[\"']softmax",
        id="hidden_softmax",
    ),
    pytest.param(
        dict(sizes=[2, 8, 8, 1], activation=["relu"]),
        ValueError,
        r"one name per hidden layer: expected 2, got 1",
        id="hidden_list_too_short",
    ),
    pytest.param(
        dict(sizes=[2, 8, 1], activation=["relu", "tanh"]),
        ValueError,
        r"one name per hidden layer: expected 1, got 2",
        id="hidden_list_too_long",
    ),
    pytest.param(
        dict(sizes=[2, 8, 1], loss="binary_cross_entropy", output_activation="softmax"),
        ValueError,
        r"binary_cross_entropy.*needs output_activation [\"']sigmoid[\"'].*got "
        r"[\"']softmax[\"']",
        id="bce_with_softmax",
    ),
    pytest.param(
        dict(sizes=[2, 8, 3], loss="cross_entropy", output_activation="sigmoid"),
        ValueError,
        r"cross_entropy.*needs output_activation [\"']softmax[\"'].*got "
        r"[\"']sigmoid[\"']",
        id="ce_with_sigmoid",
    ),
    pytest.param(
        dict(sizes=[2, 8, 3], loss="mse", output_activation="softmax"),
        ValueError,
        r"loss 'mse' does not take a softmax output",
        id="mse_with_softmax",
    ),
    pytest.param(
        dict(sizes=[2, 8, 1], seed=-1),
        ValueError,
        r"seed must be in \[0, 2\*\*64\), got -1",
        id="seed=-1",
    ),
    pytest.param(
        dict(sizes=[2, 8, 1], seed=2**64),
        ValueError,
        r"seed must be in \[0, 2\*\*64\), got 18446744073709551616",
        id="seed=2**64",
    ),
    pytest.param(
        dict(sizes=[2, 8, 1], seed=1.5),
        TypeError,
        r"seed must be an int or None, got float",
        id="seed=1.5",
    ),
    # Beyond the list: not "must be an int or None, got int".
    pytest.param(
        dict(sizes=[2, 8, 1], seed=2**200),
        ValueError,
        r"seed must be in \[0, 2\*\*64\)",
        id="seed=2**200",
    ),
]


@pytest.mark.parametrize("kwargs,exc,match", CTOR_CASES)
def test_bad_constructor(kwargs, exc, match):
    kwargs = dict(kwargs)
    sizes = kwargs.pop("sizes")
    with pytest.raises(exc, match=match):
        NeuralNetwork(sizes, **kwargs)


_HUGE_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from ferrinet import NeuralNetwork
    sizes = json.loads(sys.argv[1])
    t0 = time.process_time()  # CPU time: a busy machine does not stretch it
    try:
        NeuralNetwork(sizes)
        out = {"exc": None, "msg": ""}
    except BaseException as e:
        out = {"exc": type(e).__name__, "msg": str(e)}
    out["elapsed"] = time.process_time() - t0
    # The peak RSS of this process's own memory: VmHWM. (ru_maxrss is not it: Linux carries
    # the parent's peak across fork + exec, so a large pytest process would fail this test.)
    try:
        with open("/proc/self/status") as f:
            hwm = [line for line in f if line.startswith("VmHWM:")]
        out["maxrss_kib"] = int(hwm[0].split()[1])
    except (OSError, IndexError):
        out["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize(
    "sizes",
    [
        pytest.param([100000, 100000, 100000], id="1e5x1e5x1e5"),
        pytest.param([2**40, 2**40], id="2**40x2**40"),
        pytest.param([2**31, 2**31], id="2**31x2**31"),
    ],
)
def test_huge_network_refused_before_allocating(sizes):
    """Run in a child so that a library that does try to allocate (and gets OOM-killed, or
    spends minutes filling memory) fails this test instead of killing the test run."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _HUGE_CHILD, json.dumps(sizes)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"NeuralNetwork({sizes}) was still running after 30 s (it is allocating)")
    assert proc.returncode == 0, f"child crashed (rc {proc.returncode}): {proc.stderr[-2000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["exc"] in ("MemoryError", "ValueError"), out
    # The message says what was asked for and why it cannot be had.
    assert any(s in out["msg"] for s in ("GiB", "bytes", "parameters", "allocate")), out
    assert out["elapsed"] < 1.0, out
    # Refused before allocating: the child never grew beyond an ordinary Python process.
    assert out["maxrss_kib"] < 512 * 1024, out


# --------------------------------------------------------------------------------------------
# set_weights
# --------------------------------------------------------------------------------------------


def _bad_weights(kind, good):
    ws = [(w.copy(), b.copy()) for w, b in good]
    if kind == "too_few_layers":
        return ws[:1]
    if kind == "too_many_layers":
        return ws + ws[:1]
    if kind == "transposed_W":
        return [(ws[0][0].T.copy(), ws[0][1])] + ws[1:]
    if kind == "wrong_bias_length":
        return [(ws[0][0], ws[0][1][:-1])] + ws[1:]
    if kind == "nan_weight":
        ws[0][0][2, 1] = NAN
        return ws
    if kind == "inf_bias":
        ws[1][1][0] = INF
        return ws
    if kind == "nan_in_last_layer_only":
        # The first layer is valid and different: it must not be applied either.
        ws[0] = (ws[0][0] + 1.0, ws[0][1] + 1.0)
        ws[1][0][0, 3] = NAN
        return ws
    if kind == "not_a_pair":
        return [(ws[0][0], ws[0][1], ws[0][1])] + ws[1:]
    if kind == "not_a_list":
        return 3.0
    raise AssertionError(kind)


SET_WEIGHTS_CASES = [
    pytest.param(
        "too_few_layers",
        ValueError,
        r"expected 2 \(W, b\) pairs, one per layer, got 1",
        id="too_few_layers",
    ),
    pytest.param(
        "too_many_layers",
        ValueError,
        r"expected 2 \(W, b\) pairs, one per layer, got 3",
        id="too_many_layers",
    ),
    pytest.param(
        "transposed_W",
        ValueError,
        r"layer 0: W must have shape \(8, 2\), got [\[(]2, 8[\])]",
        id="transposed_W",
    ),
    pytest.param(
        "wrong_bias_length",
        ValueError,
        r"layer 0: b must have shape \(8,\), got [\[(]7,?[\])]",
        id="wrong_bias_length",
    ),
    pytest.param("nan_weight", ValueError, r"layer 0: .*must be finite, got NaN", id="nan_weight"),
    pytest.param("inf_bias", ValueError, r"layer 1: .*must be finite, got inf", id="inf_bias"),
    pytest.param(
        "nan_in_last_layer_only",
        ValueError,
        r"layer 1: .*must be finite, got NaN",
        id="nan_in_last_layer_only",
    ),
    pytest.param(
        "not_a_pair", ValueError, r"layer 0: expected a \(W, b\) pair, got 3 items", id="not_a_pair"
    ),
    pytest.param("not_a_list", TypeError, r"list of \(W, b\) pairs, got float", id="not_a_list"),
]


@pytest.mark.parametrize("kind,exc,match", SET_WEIGHTS_CASES)
def test_bad_set_weights(kind, exc, match):
    net = make_net("mse1")
    bad = _bad_weights(kind, net.get_weights())
    raises_and_unchanged(net, exc, match, lambda: net.set_weights(bad))


# --------------------------------------------------------------------------------------------
# Epochs check their inputs mini-batch by mini-batch
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_bad_input_late_in_an_epoch_fails_the_call_and_changes_nothing(shuffle, threads):
    """fit / train_epoch check X one mini-batch at a time, as they gather it (no separate pass
    over all of X). A NaN in the last rows is found after many batches were applied; the call
    must still fail with the row of X, and leave the weights and the training run (optimizer
    moments, step count, generator) exactly as they were."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2000, 5))
    y = (X[:, 0] > 0).astype(int)

    def fresh():
        net = NeuralNetwork([5, 16, 2], loss="cross_entropy", seed=1)
        net.n_threads = threads
        net.fit(X, y, epochs=1, batch_size=64, shuffle=shuffle, verbose=0)
        return net

    net, twin = fresh(), fresh()
    bad = X.copy()
    bad[1990, 3] = np.nan
    for call in (
        lambda: net.fit(
            bad, y, epochs=2, batch_size=64, shuffle=shuffle, verbose=0, warm_start=True
        ),
        lambda: net.train_epoch(bad, y, batch_size=64, shuffle=shuffle),
    ):
        with pytest.raises(ValueError, match=r"inputs must be finite, got NaN at \[1990, 3\]"):
            call()
    assert all(
        np.array_equal(a, b) and np.array_equal(c, d)
        for (a, c), (b, d) in zip(net.get_weights(), twin.get_weights())
    )
    # The training run continues as if the failed calls never happened.
    for n in (net, twin):
        n.fit(X, y, epochs=2, batch_size=64, shuffle=shuffle, verbose=0, warm_start=True)
    assert all(
        np.array_equal(a, b) and np.array_equal(c, d)
        for (a, c), (b, d) in zip(net.get_weights(), twin.get_weights())
    )
