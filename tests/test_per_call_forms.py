"""``backward`` and ``gradients`` on one sample read the common forms in place (#15: a 1-D
array of the network's dtype, a class index as an int or a NumPy integer, a float target):
every form of the same sample gives the same bits as the general path, and every form that is
an error gives the general path's message."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import same_weights
from ferrinet import NeuralNetwork

X = np.array([0.25, -1.5, 0.75])


def x_forms(dtype):
    """The sample X in forms the fast path must read (or pass on) without changing a bit."""
    native = X.astype(dtype)
    wider = np.zeros(2 * X.size, dtype=dtype)
    wider[::2] = native
    unaligned = np.zeros(native.nbytes + 1, dtype=np.uint8)[1:].view(dtype)
    unaligned[...] = native
    return {
        "native": native,
        "byteswapped": native.astype(native.dtype.newbyteorder()),
        "strided": wider[::2],
        "reversed": native[::-1].copy()[::-1],
        "readonly": np.frombuffer(native.tobytes(), dtype=dtype),
        "unaligned": unaligned,
        "other_float": X.astype("float32" if dtype == "float64" else "float64"),
        "list": X.astype(dtype).tolist(),
        "row_of_2d": native[None][0],
    }


def run(net, x, y):
    loss = net.backward(x, y, 0.1)
    grads = net.gradients(x, y)
    return loss, grads


def assert_same(a, b):
    (loss_a, grads_a), net_a = a
    (loss_b, grads_b), net_b = b
    assert loss_a == loss_b
    for (wa, ba), (wb, bb) in zip(grads_a, grads_b):
        assert wa.dtype == wb.dtype and np.array_equal(wa, wb)
        assert np.array_equal(ba, bb)
    assert same_weights(net_a, net_b)


def results(sizes, loss, dtype, x, y):
    net = NeuralNetwork(sizes, activation="tanh", loss=loss, seed=3, dtype=dtype)
    return run(net, x, y), net


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("form", list(x_forms("float64")))
def test_every_form_of_x_gives_the_bits_of_the_general_path(dtype, form):
    x = x_forms(dtype)[form]
    ref = results([3, 5, 2], "mse", dtype, X.tolist(), [0.5, -0.25])
    assert_same(results([3, 5, 2], "mse", dtype, x, np.array([0.5, -0.25], dtype=dtype)), ref)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_form_of_y_gives_the_bits_of_the_general_path(dtype):
    # mse, one output: a float, NumPy scalars, 1-D arrays in any dtype and byte order
    ref = results([3, 4, 1], "mse", dtype, X.tolist(), [0.3])
    native = np.array([0.3], dtype=dtype)
    for y in [
        0.3,
        np.float64(0.3),
        native,
        native.astype(native.dtype.newbyteorder()),
        np.array(0.3),
        np.array([0.3], dtype="float32" if dtype == "float64" else "float64"),
    ]:
        if isinstance(y, np.ndarray) and y.dtype != native.dtype:
            # another float type is converted to the network's, as the general path does
            y_ref = y.astype(dtype).tolist() if y.ndim else [float(y.astype(dtype))]
            expected = results([3, 4, 1], "mse", dtype, X.tolist(), y_ref)
        else:
            expected = ref
        assert_same(results([3, 4, 1], "mse", dtype, X.astype(dtype), y), expected)
    # cross-entropy: a class index in every integer form, and a row of probabilities
    ref = results([3, 4, 3], "cross_entropy", dtype, X.tolist(), 2.0)  # the general path
    for y in [2, np.int64(2), np.uint8(2), np.int32(2), np.array(2), 2.0, np.float32(2)]:
        assert_same(results([3, 4, 3], "cross_entropy", dtype, X.astype(dtype), y), ref)
    row = np.array([0.0, 0.0, 1.0], dtype=dtype)
    ref = results([3, 4, 3], "cross_entropy", dtype, X.tolist(), row.tolist())
    assert_same(results([3, 4, 3], "cross_entropy", dtype, X.astype(dtype), row), ref)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_errors_in_fast_path_forms_are_the_general_paths(dtype):
    def message(sizes, loss, x, y):
        net = NeuralNetwork(sizes, loss=loss, seed=0, dtype=dtype)
        before = net.get_weights()
        with pytest.raises((ValueError, TypeError)) as info:
            net.backward(x, y, 0.1)
        after = net.get_weights()
        assert all(np.array_equal(a, b) for pa, pb in zip(before, after) for a, b in zip(pa, pb))
        return type(info.value), str(info.value)

    x = X.astype(dtype)
    ce, mse1, mse2 = ([3, 4, 3], "cross_entropy"), ([3, 4, 1], "mse"), ([3, 4, 2], "mse")
    nan_x = x.copy()
    nan_x[1] = np.nan
    cases = [  # (network, fast-path form of x, y), (the same through the general path)
        ((ce, x, 3), (X.tolist(), 3.0)),
        ((ce, x, np.int64(-1)), (X.tolist(), -1.0)),
        ((ce, x, np.uint8(7)), (X.tolist(), 7.0)),
        ((mse1, x[:2], 0.5), (X[:2].tolist(), [0.5])),
        ((mse2, x, 0.5), (X.tolist(), np.float64(0.5))),  # a float subclass: general path
        ((mse2, x, np.zeros(3, dtype=dtype)), (X.tolist(), [0.0, 0.0, 0.0])),
        ((mse1, nan_x, 0.5), (nan_x.tolist(), [0.5])),
        ((mse1, x, float("inf")), (X.tolist(), np.float64("inf"))),
    ]
    for (net_args, x_fast, y_fast), (x_general, y_general) in cases:
        got = message(*net_args, x_fast, y_fast)
        assert got == message(*net_args, x_general, y_general), (x_fast, y_fast)
