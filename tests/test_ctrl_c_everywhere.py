"""Ctrl-C in the calls that were left (issue #15, item 5): ``gradients`` and a batch
``backward`` of a large batch, and every pass over a large network's parameters (drawing them
in the constructor, ``copy``, ``get_weights`` / ``set_weights``, ``get_flat_parameters`` /
``set_flat_parameters``) look for signals while they run: counted (``_signal_polls``), never
timed. A real SIGINT-like interrupt (``setitimer``) mid-call raises KeyboardInterrupt and leaves
the network as it was: predict gives the same outputs and a later ``fit`` trains."""

from __future__ import annotations

import signal

import ferrinet
import numpy as np
import pytest
from conftest import interrupted, n_values
from ferrinet import _core

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")

# the parameter passes look for Ctrl-C before each chunk of 2**19 values (the transposing ones,
# between W and the flat layout, before each quarter of that)
STOP_EVERY = 1 << 19


def big_data(n=200_000, dtype=np.float64):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 64)).astype(dtype), rng.integers(0, 10, size=n)


def small_net(dtype="float64", n_threads=1):
    return ferrinet.NeuralNetwork(
        [64, 128, 128, 10], loss="cross_entropy", seed=0, dtype=dtype, n_threads=n_threads
    )


@pytest.fixture(scope="module")
def big():
    """4096 * 4096 + 4096 * 10 weights: 16.8 M float64 values, 134 MB."""
    return ferrinet.NeuralNetwork([4096, 4096, 10], seed=0)


def polls_of(call):
    before = _core._signal_polls()
    result = call()
    return _core._signal_polls() - before, result


def same_weights(a, b):
    return all(np.array_equal(w, v) and np.array_equal(c, d) for (w, c), (v, d) in zip(a, b))


# ----------------------------------------------------------------------------------------------
# gradients and backward of a large batch
# ----------------------------------------------------------------------------------------------
def test_gradients_and_a_batch_backward_look_for_signals_while_they_run():
    X, y = big_data()
    net = small_net()
    # chunks start at one block of 256 rows and at most double: 200,000 rows take >= 9
    polls, grads = polls_of(lambda: net.gradients(X, y))
    assert polls >= 9
    assert all(np.isfinite(g).all() and np.isfinite(b).all() for g, b in grads)
    polls, loss = polls_of(lambda: net.backward(X, y, 0.01))
    assert polls >= 9
    assert np.isfinite(loss)


@pytest.mark.parametrize("method", ["gradients", "backward"])
def test_a_signal_mid_gradients_or_backward_changes_nothing(method):
    X, y = big_data(400_000)
    net = small_net()
    weights = net.get_weights()
    expected = net.predict(X[:300])
    if method == "gradients":
        assert interrupted(lambda: net.gradients(X, y), 0.01)
    else:
        assert interrupted(lambda: net.backward(X, y, 0.01), 0.01)
    assert same_weights(net.get_weights(), weights)
    assert np.array_equal(net.predict(X[:300]), expected)
    # and it still trains, from the same weights as an untouched twin
    twin = small_net()
    a = net.fit(X[:2000], y[:2000], epochs=1, batch_size=64, verbose=0)
    b = twin.fit(X[:2000], y[:2000], epochs=1, batch_size=64, verbose=0)
    assert a.loss == b.loss
    assert same_weights(net.get_weights(), twin.get_weights())


@pytest.mark.parametrize("n_threads", [1, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_large_batch_gradients_are_the_flat_gradient_and_backward_steps_by_them(
    n_threads, weighted
):
    """A batch of more than one block is summed block by block, as the flat gradient is: the
    same bits as ``loss_and_gradient`` (for any thread count), and ``backward`` takes exactly
    the step W - lr * dW of those gradients."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(1000, 20)), rng.integers(0, 4, size=1000)
    w = rng.random(1000) if weighted else None
    net = ferrinet.NeuralNetwork([20, 30, 4], loss="cross_entropy", seed=0, n_threads=n_threads)
    grads = net.gradients(X, y, l2=0.01, sample_weight=w)
    value, flat = net.loss_and_gradient(X, y, l2=0.01, sample_weight=w)
    packed = np.concatenate([g.T.ravel() for g, _ in grads] + [b for _, b in grads])
    np.testing.assert_array_equal(packed, flat)
    one = ferrinet.NeuralNetwork([20, 30, 4], loss="cross_entropy", seed=0, n_threads=1)
    for (g, b), (g1, b1) in zip(grads, one.gradients(X, y, l2=0.01, sample_weight=w)):
        assert np.array_equal(g, g1) and np.array_equal(b, b1)
    if weighted:
        return
    before = net.get_weights()
    loss = net.backward(X, y, 0.1)
    plain = one.gradients(X, y)  # the gradients above carry l2 = 0.01; backward has none
    stepped = [(W - 0.1 * dW, b - 0.1 * db) for (W, b), (dW, db) in zip(before, plain)]
    assert same_weights(net.get_weights(), stepped)
    assert loss == one.compute_loss(X, y)


def test_a_refused_large_batch_step_changes_nothing():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(600, 5)), rng.normal(size=(600, 1))
    net = ferrinet.NeuralNetwork([5, 8, 1], seed=0)
    before = net.get_weights()
    with pytest.raises(ferrinet.DivergenceError, match="the loss is inf"):
        net.backward(X, Y * 1e300, 0.1)
    with pytest.raises(ferrinet.DivergenceError, match="would make a weight non-finite"):
        net.backward(X, Y, 1e308)
    assert same_weights(net.get_weights(), before)
    assert np.isfinite(net.backward(X, Y, 0.01))


# ----------------------------------------------------------------------------------------------
# passes over a large network's parameters
# ----------------------------------------------------------------------------------------------
def test_every_pass_over_a_large_networks_parameters_looks_for_signals_per_chunk(big):
    chunks = n_values(big) // STOP_EVERY  # 32
    polls, net = polls_of(lambda: ferrinet.NeuralNetwork([4096, 4096, 10], seed=0))
    assert polls >= chunks
    polls, weights = polls_of(big.get_weights)
    assert polls >= chunks
    assert same_weights(weights, net.get_weights())  # the same draws, in chunks
    polls, clone = polls_of(big.copy)
    assert polls >= chunks
    polls, _ = polls_of(lambda: clone.set_weights(weights))
    assert polls >= 2 * chunks  # copied in, then checked
    polls, theta = polls_of(big.get_flat_parameters)
    assert polls >= 4 * chunks
    polls, _ = polls_of(lambda: clone.set_flat_parameters(theta))
    assert polls >= 4 * chunks + 2 * chunks
    assert same_weights(clone.get_weights(), weights)


def test_a_signal_mid_pass_over_a_large_network_leaves_it_as_it_was(big):
    x = np.random.default_rng(0).random((3, 4096))
    expected = big.predict(x)
    weights = big.get_weights()
    theta = big.get_flat_parameters()
    assert interrupted(lambda: ferrinet.NeuralNetwork([4096, 4096, 10], seed=1))
    assert interrupted(big.copy)
    assert interrupted(big.get_weights)
    assert interrupted(big.get_flat_parameters)
    other = [(w + 1.0, b) for w, b in weights]
    assert interrupted(lambda: big.set_weights(other))
    assert interrupted(lambda: big.set_flat_parameters(theta + 1.0))
    assert np.array_equal(big.predict(x), expected)
    assert same_weights(big.get_weights(), weights)


def test_arrays_that_must_be_converted_are_converted_with_looks_for_signals(big):
    """A large array of another dtype or layout is copied slice by slice with a look before
    each (before, the conversion was one uninterruptible astype). Poll counts only grow on a
    busy machine (passes halve their chunks when one runs long), so they are lower bounds."""
    weights = big.get_weights()
    chunks = sum(w.size for w, _ in weights) // STOP_EVERY  # 32
    # set_weights takes a converted array as it is and the core's pass looks >= 32 times: the
    # conversion's own looks make it >= 64 (33 before)
    polls, _ = polls_of(lambda: big.set_weights([(w.astype(np.float32), b) for w, b in weights]))
    assert polls >= 2 * chunks
    rounded = [(w.astype(np.float32).astype(np.float64), b) for w, b in weights]
    assert same_weights(big.get_weights(), rounded)
    big.set_weights(weights)

    X, _ = big_data(100_000)
    net = small_net()
    expected = net.predict(X)
    # predicting 100,000 rows looks every 10 ms or so (1-2 looks before); converting the
    # Fortran-ordered copy looks once per 2**19 values (12)
    polls, out = polls_of(lambda: net.predict(np.asfortranarray(X)))
    assert polls >= X.size // STOP_EVERY
    assert np.array_equal(out, expected)
    # float32 data for a float64 network: the same values as an astype in one go
    X32 = X.astype(np.float32)
    assert np.array_equal(net.predict(X32), net.predict(X32.astype(np.float64)))


def test_a_signal_mid_conversion_leaves_the_network_as_it_was(big):
    weights = big.get_weights()
    other = [((w + 1.0).astype(np.float32), b) for w, b in weights]
    assert interrupted(lambda: big.set_weights(other))
    assert same_weights(big.get_weights(), weights)
    theta = big.get_flat_parameters()
    assert interrupted(lambda: big.set_flat_parameters((theta + 1.0).astype(np.float32)))
    assert same_weights(big.get_weights(), weights)
    # a dtype that is refused is refused on the first slice, with the usual message
    with pytest.raises(TypeError, match="real numbers"):
        big.set_flat_parameters(theta.astype(np.complex128))
    assert same_weights(big.get_weights(), weights)


class _Tagged(ferrinet.NeuralNetwork):
    pass


def test_copy_keeps_class_architecture_weights_and_thread_setting_but_not_the_run():
    X, y = big_data(500)
    net = _Tagged([64, 16, 10], activation="tanh", loss="cross_entropy", seed=3, dtype="float32")
    net.n_threads = 2
    net.note = ["kept"]
    net.fit(X, y, epochs=1, verbose=0)
    clone = net.copy()
    assert type(clone) is _Tagged and clone.note == ["kept"]
    assert (clone.sizes, clone.activations, clone.loss, clone.seed, clone.dtype) == (
        net.sizes,
        net.activations,
        net.loss,
        net.seed,
        net.dtype,
    )
    assert clone.n_threads == 2 and clone._n_threads_setting == 2
    assert clone.training_state is None and net.training_state is not None
    assert same_weights(clone.get_weights(), net.get_weights())
    clone.fit(X, y, epochs=1, verbose=0)  # independent
    assert not same_weights(clone.get_weights(), net.get_weights())
    default = ferrinet.NeuralNetwork([3, 2], seed=0).copy()
    assert default._n_threads_setting is None


# ----------------------------------------------------------------------------------------------
# int labels are read as they are: the stretch before a call's first look for Ctrl-C
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_int_labels_give_what_float_labels_give_and_the_same_errors(dtype):
    """int64 / int32 class indices are read without the float64 copy (on 2,000,000 labels that
    copy and its checks were ~70 ms with the GIL held before the first look for Ctrl-C): the
    same values, for any layout, and the same message for an index out of range."""
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(700, 64)), rng.integers(0, 10, size=1400)[::2]  # a strided view
    net = small_net()
    as_float = y.astype(np.float64)
    labels = y.astype(dtype)
    assert net.compute_loss(X, labels) == net.compute_loss(X, as_float)
    assert net.evaluate(X, labels) == net.evaluate(X, as_float)
    for (g, b), (g1, b1) in zip(net.gradients(X, labels), net.gradients(X, as_float)):
        assert np.array_equal(g, g1) and np.array_equal(b, b1)
    for bad in (10, -1, 12345):
        wrong = labels.copy()
        wrong[123] = bad
        with pytest.raises(ValueError) as err:
            net.compute_loss(X, wrong)
        with pytest.raises(ValueError) as err_float:
            net.compute_loss(X, wrong.astype(np.float64))
        assert str(err.value) == str(err_float.value)
        assert f"class index {bad} at position 123 is out of range" in str(err.value)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compute_loss_is_evaluates_loss_bit_for_bit_without_the_accuracy(dtype):
    """compute_loss reduces the same blocks as evaluate, without the argmax of every row that
    only evaluate's accuracy needs: the same loss, bit for bit, weighted or not."""
    X, y = big_data(3000, np.float32 if dtype == "float32" else np.float64)
    w = np.random.default_rng(5).random(3000)
    for n_threads in (1, 3):
        net = small_net(dtype, n_threads)
        assert net.compute_loss(X, y) == net.evaluate(X, y)["loss"]
        assert net.compute_loss(X, y, sample_weight=w) == net.evaluate(X, y, w)["loss"]
        assert net.loss_and_gradient(X, y)[0] == net.compute_loss(X, y)
