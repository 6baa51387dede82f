"""ONNX export (`ferrinet.onnx.to_onnx`): onnxruntime runs the exported graph and must give
`net.predict`, for every activation, every loss and both dtypes; the file is written atomically;
bad arguments are refused before anything is built or written.

Tolerance: |onnxruntime - ferrinet| <= R * max(|ferrinet|, S) element by element, R = 1e-6 for
float32 and 1e-12 for float64, S = max(1, the largest |z| any layer computes for the batch).
The floor S is there because rounding errors are relative to the values computed inside the
network, not to an output that is small (a tanh or sigmoid of a z that cancelled to near 0):
e.g. a float32 tanh output of 0.0069, computed through hidden values up to 13, is off the
float64 truth by 6e-7 in ferrinet and by 9e-8 in onnxruntime. Measured on these cases: float32 <= 1.5e-7,
float64 <= 2.8e-16.
"""

import itertools
import os
import subprocess
import sys

import ferrinet
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from conftest import HIDDEN  # noqa: E402
from ferrinet.onnx import DEFAULT_OPSET, MIN_OPSET, to_onnx  # noqa: E402

# (loss, output activation): every output activation mse takes, and the two logit losses.
HEADS = [
    ("mse", "identity"),
    ("mse", "relu"),
    ("mse", "leaky_relu"),
    ("mse", "sigmoid"),
    ("mse", "tanh"),
    ("binary_cross_entropy", "sigmoid"),
    ("cross_entropy", "softmax"),
    ("poisson", "exp"),
]
RTOL = {"float32": 1e-6, "float64": 1e-12}


def run(model, X):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(["output"], {"input": X})
    return out


def internal_scale(net, X):
    """max(1, largest |z| of any layer on X), z computed in float64 from the weights."""
    f = {
        "identity": lambda z: z,
        "relu": lambda z: np.maximum(z, 0.0),
        "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
        "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
        "tanh": np.tanh,
        "exp": np.exp,
        "softmax": lambda z: (
            np.exp(z - z.max(1, keepdims=True))
            / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)
        ),
    }
    x, scale = X.astype(np.float64), 1.0
    for (W, b), act in zip(net.get_weights(), net.activations):
        z = x @ W.astype(np.float64).T + b
        scale = max(scale, float(np.abs(z).max()))
        x = f[act](z)
    return scale


def assert_matches(got, expected, dtype, scale):
    assert got.dtype == np.dtype(dtype), (got.dtype, dtype)
    assert got.shape == expected.shape
    r = RTOL[dtype]
    err = np.abs(got.astype(np.float64) - expected) / np.maximum(np.abs(expected), scale)
    assert err.max() <= r, f"worst relative difference {err.max():.3g} > {r:g}"


def check(model, net, X):
    """onnxruntime on `model` equals `net.predict(X)` (see the tolerance above). An exp output
    turns z's absolute rounding (relative to the scale of z) into a relative error of the
    output, so there the logs of the outputs, i.e. the z, are compared (measured in float32:
    1.2e-6 relative on the outputs, with max |z| = 12.9)."""
    got, expected = run(model, X), net.predict(X)
    if net.activations[-1] == "exp" and model.graph.node[-1].op_type == "Exp":
        assert got.dtype == np.dtype(net.dtype) and (got > 0).all() and (expected > 0).all()
        got, expected = np.log(got), np.log(expected.astype(np.float64))
    assert_matches(got, expected, net.dtype, internal_scale(net, X))


def data(n_in, dtype, n=64, seed=0):
    return np.random.default_rng(seed).normal(scale=2.0, size=(n, n_in)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss,output", HEADS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_onnxruntime_equals_predict(hidden, loss, output, dtype):
    net = ferrinet.NeuralNetwork(
        [5, 9, 6, 3], activation=hidden, output_activation=output, loss=loss, seed=11, dtype=dtype
    )
    X = data(5, dtype)
    check(to_onnx(net), net, X)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mixed_activations_and_no_hidden_layer(dtype):
    net = ferrinet.NeuralNetwork(
        [4, 6, 5, 5, 4, 3],
        activation=["relu", "leaky_relu", "sigmoid", "tanh"],
        loss="cross_entropy",
        seed=2,
        dtype=dtype,
    )
    X = data(4, dtype, n=200)
    check(to_onnx(net), net, X)
    single = ferrinet.NeuralNetwork([4, 2], loss="binary_cross_entropy", seed=1, dtype=dtype)
    model = to_onnx(single)
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Sigmoid"]
    check(model, single, X)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "loss,output",
    [("binary_cross_entropy", "sigmoid"), ("cross_entropy", "softmax"), ("mse", "tanh")],
)
def test_without_output_activation_the_output_is_the_logits(loss, output, dtype):
    net = ferrinet.NeuralNetwork(
        [3, 7, 4], activation="tanh", output_activation=output, loss=loss, seed=5, dtype=dtype
    )
    # The same weights with an identity output: its predict is the last layer's z.
    logits_net = ferrinet.NeuralNetwork(
        [3, 7, 4], activation="tanh", output_activation="identity", loss="mse", dtype=dtype
    )
    logits_net.set_weights(net.get_weights())
    X = data(3, dtype)
    model = to_onnx(net, include_output_activation=False)
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Tanh", "Gemm"]
    assert model.graph.node[-1].output == ["output"]
    check(model, logits_net, X)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["ferrinet.output_activation_included"] == "False"


def test_graph_structure_names_and_parameters():
    net = ferrinet.NeuralNetwork([3, 4, 2], activation="leaky_relu", loss="cross_entropy", seed=3)
    model = to_onnx(net)
    onnx.checker.check_model(model, full_check=True)
    g = model.graph
    assert [i.name for i in g.input] == ["input"] and [o.name for o in g.output] == ["output"]

    def dims(v):
        return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]

    assert dims(g.input[0]) == ["batch", 3] and dims(g.output[0]) == ["batch", 2]
    assert g.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    # float64 leaky_relu is Max(z, Mul(z, 0.01)): onnxruntime has no double LeakyRelu kernel.
    assert [n.op_type for n in g.node] == ["Gemm", "Mul", "Max", "Gemm", "Softmax"]
    gemm = g.node[0]
    assert {a.name: onnx.helper.get_attribute_value(a) for a in gemm.attribute} == {"transB": 1}
    softmax = g.node[-1]
    assert onnx.helper.get_attribute_value(softmax.attribute[0]) == -1
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    for l, (W, b) in enumerate(net.get_weights()):
        assert inits[f"layers.{l}.weight"].shape == W.shape
        assert np.array_equal(inits[f"layers.{l}.weight"], W)
        assert np.array_equal(inits[f"layers.{l}.bias"], b)
    assert inits["layers.0.leaky_relu.slope"] == 0.01
    assert model.opset_import[0].version == DEFAULT_OPSET
    assert model.ir_version == onnx.helper.find_min_ir_version_for(model.opset_import)
    assert model.producer_name == "ferrinet"
    props = {p.key: p.value for p in model.metadata_props}
    assert props == {
        "ferrinet.sizes": "[3, 4, 2]",
        "ferrinet.activations": "['leaky_relu', 'softmax']",
        "ferrinet.loss": "cross_entropy",
        "ferrinet.dtype": "float64",
        "ferrinet.output_activation_included": "True",
    }
    f32 = ferrinet.NeuralNetwork([3, 4, 2], activation="leaky_relu", seed=3, dtype="float32")
    node = to_onnx(f32).graph.node[1]
    assert node.op_type == "LeakyRelu"
    assert onnx.helper.get_attribute_value(node.attribute[0]) == pytest.approx(0.01, rel=1e-7)


@pytest.mark.parametrize("opset", sorted({MIN_OPSET, 16, 18, 19, onnx.defs.onnx_opset_version()}))
def test_every_opset_in_range_gives_the_same_results(opset):
    for dtype in ("float32", "float64"):
        net = ferrinet.NeuralNetwork(
            [4, 5, 5, 5, 5, 5, 3],
            activation=HIDDEN,
            loss="cross_entropy",
            seed=8,
            dtype=dtype,
        )
        model = to_onnx(net, opset=opset)
        assert model.opset_import[0].version == opset
        X = data(4, dtype)
        check(model, net, X)


def test_saving_is_atomic_and_round_trips(tmp_path):
    net = ferrinet.NeuralNetwork([2, 8, 1], activation="tanh", seed=0)
    before = net.get_weights()
    path = tmp_path / "model.onnx"
    path.write_bytes(b"an older file")
    model = to_onnx(net, path)
    assert path.read_bytes() == model.SerializeToString()
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]  # no temporary file left
    loaded = onnx.load(str(path))
    X = data(2, "float64")
    check(loaded, net, X)
    # str and bytes paths too; the model is unchanged by exporting
    to_onnx(net, str(tmp_path / "b.onnx"))
    to_onnx(net, os.fsencode(tmp_path / "c.onnx"))
    assert sorted(os.listdir(tmp_path)) == ["b.onnx", "c.onnx", "model.onnx"]
    for (W0, b0), (W1, b1) in zip(before, net.get_weights()):
        assert np.array_equal(W0, W1) and np.array_equal(b0, b1)


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    net = ferrinet.NeuralNetwork([2, 3, 1], seed=0)
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")

    def fail(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="simulated"):
        to_onnx(net, path)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_bad_arguments_are_refused_clearly(tmp_path):
    net = ferrinet.NeuralNetwork([2, 3, 1], seed=0)
    with pytest.raises(TypeError, match="ferrinet.NeuralNetwork, got list"):
        to_onnx([1, 2])
    with pytest.raises(TypeError, match="NeuralNetwork, got ferrinet.reference.NeuralNetwork"):
        to_onnx(ferrinet.reference.NeuralNetwork([2, 3, 1]))
    with pytest.raises(TypeError, match="opset must be an int, got '17'"):
        to_onnx(net, opset="17")
    with pytest.raises(TypeError, match="opset must be an int, got True"):
        to_onnx(net, opset=True)
    newest = onnx.defs.onnx_opset_version()
    with pytest.raises(ValueError, match=f"between {MIN_OPSET} and {newest}.*got 12"):
        to_onnx(net, opset=12)
    with pytest.raises(ValueError, match=f"got {newest + 1}"):
        to_onnx(net, opset=newest + 1)
    with pytest.raises(
        TypeError, match="include_output_activation must be True or False, got 'no'"
    ):
        to_onnx(net, include_output_activation="no")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike.*got int"):
        to_onnx(net, 3)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        to_onnx(net, tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        to_onnx(net, tmp_path / "missing" / "model.onnx")
    with pytest.raises(ValueError, match="must not be empty"):
        to_onnx(net, "")
    assert os.listdir(tmp_path) == []  # nothing was written by any of them
    with pytest.raises(TypeError):
        to_onnx(net, tmp_path / "m.onnx", 17)  # opset is keyword-only


def test_missing_onnx_gives_an_install_hint(monkeypatch):
    net = ferrinet.NeuralNetwork([2, 1])
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(ImportError, match=r"pip install ferrinet\[onnx\]"):
        to_onnx(net)


def test_importing_ferrinet_does_not_import_onnx():
    code = (
        "import sys, ferrinet, ferrinet.onnx, ferrinet.inspect; "
        "assert 'onnx' not in sys.modules and 'onnxruntime' not in sys.modules, "
        "sorted(m for m in sys.modules if 'onnx' in m)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_all_heads_and_hidden_activations_are_covered():
    assert set(HIDDEN) | {"softmax", "exp"} == set(ferrinet.ACTIVATIONS) - {"linear"}
    assert {loss for loss, _ in HEADS} == set(ferrinet.LOSSES)
    assert len(list(itertools.product(HIDDEN, HEADS))) == 40
