"""`ferrinet.inspect.trace`: one sample's forward and backward pass with every intermediate.

It runs the same Rust pieces as `gradients`, so its gradients, loss and output must equal
`net.gradients(x[None], y[None])`, `net.compute_loss(...)` and `net.forward(x)` bit for bit
(stronger than the 1e-12 asked for), in float32 and float64. Its intermediates must follow
docs/maths.md and agree with `ferrinet.reference` (pure Python, float64, left-to-right sums):
to 1e-12 relative in float64 (measured 3.4e-15), and to 1e-5 in float32 (float32 rounding,
~6e-8 per operation, through a few layers; measured 1.4e-6), relative to max(|value|, largest
|entry| of the array), since an entry that cancels to near 0 keeps the rounding error of its
terms.
"""

import ferrinet
import numpy as np
import pytest
from conftest import HIDDEN
from ferrinet import reference
from ferrinet.inspect import LayerTrace, NeuronTrace, Trace, trace

HEADS = [
    ("mse", "identity"),
    ("mse", "relu"),
    ("mse", "leaky_relu"),
    ("mse", "sigmoid"),
    ("mse", "tanh"),
    ("binary_cross_entropy", "sigmoid"),
    ("cross_entropy", "softmax"),
]
REL = {"float64": 1e-12, "float32": 1e-5}


def assert_close(got, expected, rel, what=""):
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, (what, got.shape, expected.shape)
    if expected.size == 0:
        return
    scale = np.maximum(np.abs(expected), np.abs(expected).max())
    scale[scale == 0] = 1.0
    err = (np.abs(got - expected) / scale).max()
    assert err <= rel, f"{what}: relative difference {err:.3g} > {rel:g}"


def sample_target(loss, m, rng, form="row"):
    """One sample's target, in the forms `backward` accepts for one sample."""
    if loss == "cross_entropy":
        if form == "class":
            return int(rng.integers(m))
        row = rng.uniform(size=m)
        return row / row.sum()
    if loss == "binary_cross_entropy":
        return rng.uniform(size=m)
    return rng.normal(size=m)


def case(hidden, loss, output, dtype, seed=0, m=3):
    net = ferrinet.NeuralNetwork(
        [4, 6, 5, m], activation=hidden, output_activation=output, loss=loss, seed=seed, dtype=dtype
    )
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=1.5, size=4)
    return net, x, rng


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss,output", HEADS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_trace_equals_gradients_and_follows_the_formulas(hidden, loss, output, dtype):
    net, x, rng = case(hidden, loss, output, dtype)
    forms = ["class", "row"] if loss == "cross_entropy" else ["row"]
    for form in forms:
        y = sample_target(loss, 3, rng, form)
        t = trace(net, x, y)
        assert isinstance(t, Trace) and all(isinstance(lt, LayerTrace) for lt in t.layers)
        # --- bit for bit what the network's own methods give for the batch of one
        X, Y = x[None].astype(dtype), np.asarray(y)[None]
        for (dW, db), (gW, gb) in zip(net.gradients(X, Y), t.gradients):
            assert gW.dtype == np.dtype(dtype) and gW.shape == dW.shape
            assert np.array_equal(gW, dW) and np.array_equal(gb, db)
        assert t.loss == net.compute_loss(X, Y)
        assert np.array_equal(t.output, net.forward(x))
        # --- the formulas, layer by layer
        rel = REL[dtype]
        assert np.array_equal(t.input, x.astype(dtype))
        target = np.eye(3)[y] if form == "class" else np.asarray(y, dtype=dtype)
        assert np.array_equal(t.target, target.astype(dtype))
        for k, (lt, (W, b)) in enumerate(zip(t.layers, net.get_weights())):
            assert lt.index == k and lt.activation == net.activations[k]
            assert np.array_equal(lt.weights, W) and np.array_equal(lt.biases, b)
            if k > 0:  # the input of layer k is the a of layer k - 1, exactly
                assert np.array_equal(lt.input, t.layers[k - 1].a)
            x64, W64 = lt.input.astype(np.float64), W.astype(np.float64)
            assert_close(lt.z, W64 @ x64 + b, rel, f"z = W x + b, layer {k}")
            a = reference.activate(lt.activation, lt.z.astype(np.float64).tolist())
            assert_close(lt.a, a, rel, f"a = f(z), layer {k}")
            # dW = outer(delta, x) and db = delta: one product each, so exact
            assert np.array_equal(lt.grad_weights, np.outer(lt.delta, lt.input))
            assert np.array_equal(lt.grad_biases, lt.delta)
            assert_close(lt.grad_input, W64.T @ lt.delta.astype(np.float64), rel, f"dx, layer {k}")
        # delta of the last layer = dL/dz from the loss (docs/maths.md, n = 1)
        out = t.layers[-1]
        z, a = out.z.astype(np.float64), out.a.astype(np.float64)
        tt = t.target.astype(np.float64)
        if loss == "mse":
            f_prime = reference.ACTIVATIONS[output][1]
            fp = np.array([f_prime(zi, ai) for zi, ai in zip(z, a)])
            expected_delta = (2.0 / 3) * (a - tt) * fp
        elif loss == "binary_cross_entropy":
            expected_delta = (a - tt) / 3
        else:
            expected_delta = a * tt.sum() - tt
        assert_close(out.delta, expected_delta, rel, "output delta")
        # delta of layer k = dL/dx of layer k + 1 times f'(z) of layer k
        for below, above in zip(t.layers[:-1], t.layers[1:]):
            f_prime = reference.ACTIVATIONS[below.activation][1]
            fp = np.array([f_prime(zi, ai) for zi, ai in zip(below.z.tolist(), below.a.tolist())])
            assert_close(below.delta, above.grad_input.astype(np.float64) * fp, rel, "delta below")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss,output", HEADS)
def test_trace_agrees_with_the_reference(loss, output, dtype):
    """The pure-Python reference from the same weights: its forward cache (x, z, a per layer),
    its seed delta and its gradients for the one sample."""
    net, x, rng = case("tanh", loss, output, dtype, seed=4)
    y = sample_target(loss, 3, rng, "class" if loss == "cross_entropy" else "row")
    t = trace(net, x, y)
    ref = reference.NeuralNetwork(
        net.sizes, activation=net.activations[:-1], output_activation=output, loss=loss
    )
    ref.set_weights([(W.astype(np.float64), b.astype(np.float64)) for W, b in net.get_weights()])
    x_ref = x.astype(dtype).astype(np.float64).tolist()
    cache = ref._forward([x_ref])
    rel = REL[dtype]
    for k, (lt, (x_k, z_k, a_k)) in enumerate(zip(t.layers, cache)):
        assert_close(lt.input, x_k[0], rel, f"input, layer {k}")
        assert_close(lt.z, z_k[0], rel, f"z, layer {k}")
        assert_close(lt.a, a_k[0], rel, f"a, layer {k}")
    _, z_out, a_out = cache[-1]
    y_ref = y if isinstance(y, int) else np.asarray(y, dtype=dtype).astype(np.float64).tolist()
    t_rows = ref._targets(y_ref, 1, True)
    f_prime = reference.ACTIVATIONS[output][1]
    seed = reference.LOSSES[loss][1](z_out, a_out, t_rows, f_prime)
    assert_close(t.layers[-1].delta, seed[0], rel, "output delta")
    for k, ((dW, db), (gW, gb)) in enumerate(zip(ref.gradients(x_ref, y_ref), t.gradients)):
        assert_close(gW, dW, rel, f"dW, layer {k}")
        assert_close(gb, db, rel, f"db, layer {k}")
    assert t.loss == pytest.approx(ref.compute_loss(x_ref, y_ref), rel=rel)


def test_neurons_are_views_with_the_per_neuron_formulas():
    net = ferrinet.NeuralNetwork([3, 4, 2], activation="sigmoid", loss="cross_entropy", seed=1)
    t = trace(net, [0.2, -0.7, 1.1], 1)
    for lt in t.layers:
        neurons = lt.neurons
        assert len(neurons) == lt.n_outputs and all(isinstance(n, NeuronTrace) for n in neurons)
        for i, n in enumerate(neurons):
            assert n.index == i
            assert np.shares_memory(n.weights, lt.weights)
            assert np.array_equal(n.weights, lt.weights[i])
            assert np.shares_memory(n.grad_weights, lt.grad_weights)
            assert n.input is lt.input
            assert (n.z, n.a, n.delta, n.bias, n.grad_bias) == (
                lt.z[i],
                lt.a[i],
                lt.delta[i],
                lt.biases[i],
                lt.grad_biases[i],
            )
            assert n.z == pytest.approx(float(n.weights @ n.input) + n.bias, rel=1e-12, abs=1e-15)
            assert np.array_equal(n.grad_weights, n.delta * n.input)
            assert n.grad_bias == n.delta
    # the arrays are read-only: a trace is a record, not a handle on the model
    with pytest.raises(ValueError):
        t.layers[0].weights[0, 0] = 1.0
    with pytest.raises(ValueError):
        t.layers[0].neurons[0].grad_weights[0] = 1.0


def test_target_forms_for_one_sample():
    ce = ferrinet.NeuralNetwork([2, 3, 3], loss="cross_entropy", seed=0)
    x = [0.3, -0.4]
    by_index = trace(ce, x, 2)
    for y in (np.int64(2), 2.0, [0.0, 0.0, 1.0], np.array([0, 0, 1], dtype=np.float32)):
        assert np.array_equal(trace(ce, x, y).gradients[0][0], by_index.gradients[0][0]), y
    assert np.array_equal(by_index.target, [0.0, 0.0, 1.0])
    # x as a batch of one: y as for a batch
    batch = trace(ce, [x], [2])
    assert np.array_equal(batch.gradients[1][0], by_index.gradients[1][0])
    assert np.array_equal(batch.input, np.asarray(x))
    one_out = ferrinet.NeuralNetwork([2, 2, 1], seed=0)
    assert trace(one_out, x, 0.5).loss == trace(one_out, x, [0.5]).loss


def test_a_2_2_1_network_by_hand():
    """The docs/inspect.md example, checked against the chain rule written out."""
    net = ferrinet.NeuralNetwork([2, 2, 1], activation="tanh", seed=0)
    x, y = np.array([0.5, -1.0]), 0.25
    t = trace(net, x, y)
    (W1, b1), (W2, b2) = net.get_weights()
    z1 = W1 @ x + b1
    a1 = np.tanh(z1)
    z2 = W2 @ a1 + b2
    d2 = 2.0 * (z2 - y)  # mse, n = m = 1, identity output
    d1 = (W2.T @ d2) * (1.0 - a1**2)
    assert t.loss == pytest.approx(float((z2[0] - y) ** 2), rel=1e-14)
    np.testing.assert_allclose(t.layers[0].z, z1, rtol=1e-14)
    np.testing.assert_allclose(t.layers[1].delta, d2, rtol=1e-14)
    np.testing.assert_allclose(t.layers[0].delta, d1, rtol=1e-14)
    np.testing.assert_allclose(t.layers[0].grad_weights, np.outer(d1, x), rtol=1e-14)
    np.testing.assert_allclose(t.layers[1].grad_weights, np.outer(d2, a1), rtol=1e-14)
    text = str(t)
    assert "loss mse = " in text and "layer 0 (tanh): 2 -> 2" in text
    assert "layer 1 (identity)" in text
    assert "delta = dL/dz" in text and "dL/dx = W^T delta" in text


def test_bad_input_is_refused_and_the_model_is_unchanged():
    net = ferrinet.NeuralNetwork([4, 3, 2], loss="cross_entropy", seed=0)
    before = [(W.copy(), b.copy()) for W, b in net.get_weights()]
    x = np.array([0.1, 0.2, 0.3, 0.4])
    cases = [
        (ValueError, "one sample of 4 inputs, got 3", x[:3], 0),
        (ValueError, "trace follows one sample.*batch of 2", np.stack([x, x]), [0, 1]),
        (ValueError, "1-D sample .* or a 2-D batch", x.reshape(1, 2, 2), 0),
        (ValueError, "finite", np.array([0.1, np.nan, 0.3, 0.4]), 0),
        (TypeError, "real numbers", np.array(["a", "b", "c", "d"]), 0),
        (ValueError, "out of range", x, 2),
        (ValueError, "must be integers", x, 1.5),
        (ValueError, "class index or a row of 2 probabilities", x, [0.5, 0.25, 0.25]),
        (ValueError, r"targets in \[0, 1\]", x, [1.5, -0.5]),
    ]
    for exc, message, xs, y in cases:
        with pytest.raises(exc, match=message):
            trace(net, xs, y)
    mse = ferrinet.NeuralNetwork([4, 2], seed=0)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        trace(mse, x, [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="NeuralNetwork, got ferrinet.reference.NeuralNetwork"):
        trace(reference.NeuralNetwork([4, 3, 2]), x, 0)
    with pytest.raises(TypeError):
        ferrinet._core._trace(object(), x, 0)
    for (W0, b0), (W1, b1) in zip(before, net.get_weights()):
        assert np.array_equal(W0, W1) and np.array_equal(b0, b1)


def test_trace_does_not_touch_training_state():
    X = np.random.default_rng(0).normal(size=(16, 3))
    y = (X[:, 0] > 0).astype(int)
    net = ferrinet.NeuralNetwork([3, 4, 2], loss="cross_entropy", seed=0)
    twin = net.copy()
    net.train_epoch(X, y, batch_size=4, optimizer="adam", learning_rate=0.01, seed=1)
    twin.train_epoch(X, y, batch_size=4, optimizer="adam", learning_rate=0.01, seed=1)
    trace(net, X[0], y[0])
    net.train_epoch(X, y, seed=1)  # continues the run: optimizer moments, generator
    twin.train_epoch(X, y, seed=1)
    for (W0, b0), (W1, b1) in zip(net.get_weights(), twin.get_weights()):
        assert np.array_equal(W0, W1) and np.array_equal(b0, b1)
