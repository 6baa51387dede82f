"""Input flexibility: lists, tuples, every real dtype and every memory layout give the results of
the equivalent C-contiguous float64 array, bit for bit; results are fresh float64 arrays that
never alias the model; inputs are never modified.

All comparisons here are exact (``np.array_equal`` / ``==`` on floats): each alternative input
converts exactly to the float64 reference array it is compared with (the reference is built with
NumPy's own ``astype(np.float64)``), so the maths sees the same bits.
"""

from __future__ import annotations

import numpy as np
import pytest
from ferrinet import NeuralNetwork

RNG = np.random.default_rng(1234)
N, N_IN, N_OUT = 6, 3, 2


def net_mse(seed=7):
    return NeuralNetwork([N_IN, 5, N_OUT], activation="tanh", loss="mse", seed=seed)


def net_ce(seed=7):
    return NeuralNetwork([N_IN, 5, 3], activation="tanh", loss="cross_entropy", seed=seed)


def exact(a, b):
    """Same type of result, same shapes, same bits."""
    if isinstance(a, float):
        assert isinstance(b, float)
        assert a == b or (np.isnan(a) and np.isnan(b)), (a, b)
        return
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b):
            exact(x, y)
        return
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            exact(x, y)
        return
    assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), (type(a), type(b))
    assert a.dtype == b.dtype == np.float64
    assert a.shape == b.shape
    assert np.array_equal(a, b), (a, b)


def all_results(make, x, y):
    """Every method's result for (x, y); mutating methods run on fresh networks."""
    net = make()
    out = {
        "predict": net.predict(x),
        "compute_loss": net.compute_loss(x, y),
        "gradients": net.gradients(x, y),
    }
    n2 = make()
    out["backward"] = n2.backward(x, y, 0.01)
    out["backward_weights"] = n2.get_weights()
    n3 = make()
    out["train"] = n3.train(x, y, 3, 0.01)
    out["train_weights"] = n3.get_weights()
    # Every comparison is between finite numbers (a diverged run would compare NaN with NaN).
    assert all_finite(list(out.values()))
    return out


def all_finite(v):
    if isinstance(v, (list, tuple)):
        return all(all_finite(a) for a in v)
    return bool(np.all(np.isfinite(v)))


def assert_same_results(r, ref):
    assert r.keys() == ref.keys()
    for k in ref:
        exact(ref[k], r[k])


def snapshot_inputs(*objs):
    return [np.array(o, copy=True) for o in objs]


def assert_inputs_untouched(objs, snaps):
    for o, s in zip(objs, snaps):
        if isinstance(o, np.ndarray):
            assert o.dtype == s.dtype and o.shape == s.shape
            assert np.array_equal(o, s)
        else:
            assert np.array_equal(np.array(o), s)


# --------------------------------------------------------------------------------------------
# dtypes, lists, tuples
# --------------------------------------------------------------------------------------------

INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOAT_DTYPES = [np.float16, np.float32, np.float64, np.longdouble]

X_INT = RNG.integers(0, 100, size=(N, N_IN))  # fits every integer dtype exactly
Y_INT = RNG.integers(0, 5, size=(N, N_OUT))
X_FLOAT = RNG.normal(size=(N, N_IN))
Y_FLOAT = RNG.normal(size=(N, N_OUT))


@pytest.mark.parametrize(
    "dtype", INT_DTYPES + FLOAT_DTYPES + [np.bool_, ">f8", ">i4"], ids=lambda d: np.dtype(d).str
)
@pytest.mark.parametrize("order", ["C", "F"])
def test_every_real_dtype_matches_float64(dtype, order):
    dt = np.dtype(dtype)
    if dt.kind == "b":
        x_src, y_src = X_INT % 2, Y_INT % 2
    elif dt.kind in "iu":
        x_src, y_src = X_INT, Y_INT
    else:
        x_src, y_src = X_FLOAT, Y_FLOAT
    x, y = x_src.astype(dt, order=order), y_src.astype(dt, order=order)
    # exact conversion, C order
    x_ref, y_ref = x.astype(np.float64, order="C"), y.astype(np.float64, order="C")
    snaps = snapshot_inputs(x, y)
    ref = all_results(net_mse, x_ref, y_ref)
    assert_same_results(all_results(net_mse, x, y), ref)
    # X in that dtype with float64 targets, and the reverse.
    assert_same_results(all_results(net_mse, x, y_ref), ref)
    assert_same_results(all_results(net_mse, x_ref, y), ref)
    # forward on one sample of that dtype
    exact(net_mse().forward(x[2]), net_mse().forward(x_ref[2]))
    assert_inputs_untouched([x, y], snaps)


def test_large_integers_convert_like_numpy():
    """int64/uint64 beyond 2**53 round exactly as NumPy's astype(float64)."""
    big = np.array([[2**53 + 1, -(2**62) - 3, 7]], dtype=np.int64)
    ubig = np.array([[2**64 - 1, 2**63 + 5, 1]], dtype=np.uint64)
    net = net_mse()
    exact(net.predict(big), net.predict(big.astype(np.float64)))
    exact(net.predict(ubig), net.predict(ubig.astype(np.float64)))


@pytest.mark.parametrize("kind", ["list", "tuple", "list_of_arrays", "python_ints"])
def test_lists_and_tuples(kind):
    if kind == "list":
        x, y = X_FLOAT.tolist(), Y_FLOAT.tolist()
        x_ref, y_ref = X_FLOAT, Y_FLOAT
    elif kind == "tuple":
        x = tuple(tuple(r) for r in X_FLOAT.tolist())
        y = tuple(tuple(r) for r in Y_FLOAT.tolist())
        x_ref, y_ref = X_FLOAT, Y_FLOAT
    elif kind == "list_of_arrays":
        x, y = list(X_FLOAT), list(Y_FLOAT)
        x_ref, y_ref = X_FLOAT, Y_FLOAT
    else:
        x, y = X_INT.tolist(), Y_INT.tolist()
        x_ref, y_ref = X_INT.astype(np.float64), Y_INT.astype(np.float64)
    assert_same_results(all_results(net_mse, x, y), all_results(net_mse, x_ref, y_ref))
    exact(net_mse().forward(list(x[1])), net_mse().forward(x_ref[1]))


# --------------------------------------------------------------------------------------------
# Memory layouts
# --------------------------------------------------------------------------------------------


def _readonly(a):
    a = a.copy(order="K")  # keeps Fortran order
    a.setflags(write=False)
    return a


def _layout(kind, base):
    """A (N, cols) view of `kind` with the same values as a C array would have."""
    rows, cols = base.shape
    if kind == "fortran":
        return np.asfortranarray(base)
    if kind == "rows_step2":  # X[::2] of a taller array
        tall = np.empty((2 * rows, cols))
        tall[::2] = base
        tall[1::2] = -7.0
        return tall[::2]
    if kind == "reversed_cols_from_wider":  # X[:, ::-1] of a wider array, negative stride
        wide = np.full((rows, 2 * cols + 1), -9.0)
        wide[:, 2 * cols - 1 :: -2] = base  # columns 2c-1, 2c-3, ..., 1 hold base[:, 0..]
        v = wide[:, 2 * cols - 1 :: -2]
        assert v.strides[1] < 0
        return v
    if kind == "transposed_view":
        return np.ascontiguousarray(base.T).T
    if kind == "readonly":
        return _readonly(base)
    if kind == "readonly_fortran":
        v = _readonly(np.asfortranarray(base))
        assert v.flags.f_contiguous and not v.flags.c_contiguous
        return v
    if kind == "broadcast":  # stride-0 rows (read-only view)
        return np.broadcast_to(base[0], base.shape)
    if kind == "broadcast_cols":  # stride-0 columns
        return np.broadcast_to(base[:, :1], base.shape)
    if kind == "unaligned":
        buf = np.zeros(base.size * 8 + 1, dtype=np.uint8)
        v = buf[1:].view(np.float64).reshape(base.shape)
        v[...] = base
        assert not v.flags.aligned
        return v
    raise AssertionError(kind)


LAYOUTS = [
    "fortran",
    "rows_step2",
    "reversed_cols_from_wider",
    "transposed_view",
    "readonly",
    "readonly_fortran",
    "broadcast",
    "broadcast_cols",
    "unaligned",
]


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("which", ["X", "Y", "both"])
def test_every_layout_matches_contiguous(kind, which):
    x = _layout(kind, X_FLOAT) if which in ("X", "both") else X_FLOAT
    y = _layout(kind, Y_FLOAT) if which in ("Y", "both") else Y_FLOAT
    x_ref, y_ref = np.ascontiguousarray(x), np.ascontiguousarray(y)
    assert x_ref.flags.c_contiguous and y_ref.flags.c_contiguous
    snaps = snapshot_inputs(x, y)
    ref = all_results(net_mse, x_ref, y_ref)
    assert_same_results(all_results(net_mse, x, y), ref)
    if which != "Y":
        exact(net_mse().forward(x[3]), net_mse().forward(x_ref[3]))
    assert_inputs_untouched([x, y], snaps)


@pytest.mark.parametrize(
    "kind", ["fortran", "reversed_cols_from_wider", "transposed_view", "readonly", "broadcast"]
)
def test_layout_of_set_weights(kind):
    src = net_mse(seed=99).get_weights()
    weird = []
    for w, b in src:
        wv = _layout(kind, w)
        bv = _layout(kind, b[None, :])[0] if kind != "broadcast" else np.broadcast_to(b, b.shape)
        weird.append((wv, bv))
    a, ref = net_mse(), net_mse()
    a.set_weights(weird)
    ref.set_weights([(np.ascontiguousarray(w), np.ascontiguousarray(b)) for w, b in weird])
    exact(a.get_weights(), ref.get_weights())
    # set_weights from lists of lists too
    c = net_mse()
    c.set_weights([(w.tolist(), b.tolist()) for w, b in ref.get_weights()])
    exact(c.get_weights(), ref.get_weights())


# --------------------------------------------------------------------------------------------
# Outputs: fresh, owned, float64, C-contiguous, never aliasing the model
# --------------------------------------------------------------------------------------------


def _assert_fresh_array(a):
    assert isinstance(a, np.ndarray)
    assert a.dtype == np.float64
    assert a.flags.c_contiguous
    assert a.flags.writeable
    # Not a view of some other NumPy array (e.g. of a cached buffer).
    assert not isinstance(a.base, np.ndarray)


def test_outputs_are_fresh_arrays():
    net = net_mse()
    arrays = [net.predict(X_FLOAT), net.forward(X_FLOAT[0]), net.forward(X_FLOAT)]
    for w, b in net.get_weights():
        arrays += [w, b]
    for dw, db in net.gradients(X_FLOAT, Y_FLOAT):
        arrays += [dw, db]
    for layer in net.layers:
        arrays += [layer.weights, layer.biases] + [n.weights for n in layer.neurons]
    for a in arrays:
        _assert_fresh_array(a)


def test_two_calls_return_different_objects():
    net = net_mse()
    for f in (lambda: net.predict(X_FLOAT), lambda: net.forward(X_FLOAT[0])):
        a, b = f(), f()
        assert a is not b and not np.shares_memory(a, b)
    w1, w2 = net.get_weights(), net.get_weights()
    g1, g2 = net.gradients(X_FLOAT, Y_FLOAT), net.gradients(X_FLOAT, Y_FLOAT)
    for (a1, b1), (a2, b2) in list(zip(w1, w2)) + list(zip(g1, g2)):
        assert a1 is not a2 and not np.shares_memory(a1, a2)
        assert b1 is not b2 and not np.shares_memory(b1, b2)
    # Weights and gradients are distinct buffers too.
    for (w, b), (dw, db) in zip(w1, g1):
        assert not np.shares_memory(w, dw) and not np.shares_memory(b, db)


def test_mutating_results_does_not_change_the_network():
    net = net_mse()
    w0 = [(w.copy(), b.copy()) for w, b in net.get_weights()]
    p0 = net.predict(X_FLOAT).copy()
    g0 = [(dw.copy(), db.copy()) for dw, db in net.gradients(X_FLOAT, Y_FLOAT)]

    for w, b in net.get_weights():
        w[...] = 123.0
        b[...] = -5.0
    for layer in net.layers:
        layer.weights[...] = 7.0
        layer.biases[...] = 7.0
        for neuron in layer.neurons:
            neuron.weights[...] = 9.0
    for dw, db in net.gradients(X_FLOAT, Y_FLOAT):
        dw[...] = 1e9
        db[...] = 1e9
    net.predict(X_FLOAT)[...] = 0.0
    net.forward(X_FLOAT[0])[...] = 0.0

    exact(net.get_weights(), w0)
    exact(net.predict(X_FLOAT), p0)
    exact(net.gradients(X_FLOAT, Y_FLOAT), g0)
    # set_weights copies: mutating the arrays passed in afterwards changes nothing.
    new = [(w + 0.5, b - 0.25) for w, b in w0]
    net.set_weights(new)
    expect = [(w.copy(), b.copy()) for w, b in new]
    for w, b in new:
        w[...] = 0.0
        b[...] = 0.0
    exact(net.get_weights(), expect)
    # copy() is independent of the original.
    clone = net.copy()
    clone.backward(X_FLOAT, Y_FLOAT, 0.1)
    exact(net.get_weights(), expect)


def test_gradients_leave_model_unchanged():
    net = net_mse()
    w0 = net.get_weights()
    net.gradients(X_FLOAT, Y_FLOAT)
    net.compute_loss(X_FLOAT, Y_FLOAT)
    net.predict(X_FLOAT)
    exact(net.get_weights(), w0)


# --------------------------------------------------------------------------------------------
# Sample vs batch, and the accepted shapes of y
# --------------------------------------------------------------------------------------------


def test_forward_sample_is_1d_and_agrees_with_batch_of_one():
    net = net_mse()
    x = X_FLOAT[4]
    out = net.forward(x)
    assert out.shape == (N_OUT,) and out.dtype == np.float64
    batch = net.forward(x[None, :])
    assert batch.shape == (1, N_OUT)
    exact(out, batch[0])
    exact(out, net.predict(X_FLOAT)[4])
    # predict takes a 1-D sample as a batch of one
    exact(net.predict(x), batch)
    exact(net.forward(X_FLOAT), net.predict(X_FLOAT))


def test_sample_and_batch_of_one_agree_for_loss_gradients_backward():
    x, y = X_FLOAT[2], Y_FLOAT[2]
    assert_same_results(all_results(net_mse, x, y), all_results(net_mse, x[None], y[None]))


def test_single_output_y_shapes():
    make = lambda: NeuralNetwork([N_IN, 4, 1], activation="relu", loss="mse", seed=5)  # noqa
    y_col = Y_FLOAT[:, :1]
    ref = all_results(make, X_FLOAT, y_col)
    # (n,) for a single-output network
    assert_same_results(all_results(make, X_FLOAT, y_col[:, 0]), ref)
    assert_same_results(all_results(make, X_FLOAT, y_col[:, 0].tolist()), ref)
    # scalar y for a 1-D sample, as a float, an int-valued numpy scalar, and shape (1,)
    x, t = X_FLOAT[1], float(y_col[1, 0])
    one = all_results(make, x[None], np.array([[t]]))
    assert_same_results(all_results(make, x, t), one)
    assert_same_results(all_results(make, x, np.float64(t)), one)
    assert_same_results(all_results(make, x, np.array([t])), one)
    assert_same_results(all_results(make, x, np.array(t)), one)  # 0-D array
    ti = 3
    one_i = all_results(make, x[None], np.array([[3.0]]))
    assert_same_results(all_results(make, x, ti), one_i)
    assert_same_results(all_results(make, x, np.int8(ti)), one_i)


CLASSES = np.array([2, 0, 1, 1, 2, 0])


@pytest.mark.parametrize(
    "targets",
    [
        pytest.param(CLASSES.astype(np.int64), id="int64"),
        pytest.param(CLASSES.astype(np.uint8), id="uint8"),
        pytest.param(CLASSES.astype(np.int32), id="int32"),
        pytest.param(CLASSES.astype(np.float64), id="integral_float64"),
        pytest.param(CLASSES.astype(np.float32), id="integral_float32"),
        pytest.param(CLASSES.tolist(), id="list"),
        pytest.param(tuple(float(c) for c in CLASSES), id="tuple_of_floats"),
        pytest.param(np.eye(3)[CLASSES], id="one_hot_rows"),
        pytest.param(np.eye(3, dtype=np.int64)[CLASSES], id="one_hot_int_rows"),
        pytest.param(np.asfortranarray(np.eye(3)[CLASSES]), id="one_hot_fortran"),
    ],
)
def test_cross_entropy_targets_equivalent(targets):
    ref = all_results(net_ce, X_FLOAT, CLASSES.astype(np.int64))
    assert_same_results(all_results(net_ce, X_FLOAT, targets), ref)


def test_cross_entropy_sample_targets():
    x, c = X_FLOAT[0], int(CLASSES[0])
    ref = all_results(net_ce, x[None], np.array([c]))
    assert_same_results(all_results(net_ce, x, c), ref)
    assert_same_results(all_results(net_ce, x, np.int64(c)), ref)
    assert_same_results(all_results(net_ce, x, float(c)), ref)
    assert_same_results(all_results(net_ce, x, np.eye(3)[c]), ref)  # one probability row


def test_inputs_never_modified_by_any_call():
    x = X_FLOAT.copy()
    y = Y_FLOAT.copy()
    xs, ys = x.copy(), y.copy()
    net = net_mse()
    net.forward(x[0])
    net.forward(x)
    net.predict(x)
    net.compute_loss(x, y)
    net.gradients(x, y)
    net.backward(x, y, 0.1)
    net.backward(x[0], y[0], 0.1)
    net.train(x, y, 2, 0.1)
    w = [(a.copy(), b.copy()) for a, b in net.get_weights()]
    ws = [(a.copy(), b.copy()) for a, b in w]
    net.set_weights(w)
    assert np.array_equal(x, xs) and np.array_equal(y, ys)
    exact(w, ws)
    c = CLASSES.copy()
    net_ce().train(x, c, 2, 0.1)
    assert np.array_equal(c, CLASSES) and c.dtype == CLASSES.dtype
