"""`ferrinet.inspect.summary`: the architecture table (as Keras's / torchinfo's summary)."""

import ferrinet
import numpy as np
import pytest
from ferrinet import reference
from ferrinet.inspect import summary


def test_summary_of_a_2_8_1_network():
    net = ferrinet.NeuralNetwork([2, 8, 1], activation="relu", seed=0)
    text = summary(net)
    assert text == "\n".join(
        [
            "NeuralNetwork([2, 8, 1], activation='relu', output_activation='identity', loss='mse', seed=0)",
            "===================================================================",
            "layer  type   activation  input -> output   weights  biases  params",
            "-------------------------------------------------------------------",
            "    0  Dense  relu        (n, 2) -> (n, 8)  8x2           8      24",
            "    1  Dense  identity    (n, 8) -> (n, 1)  1x8           1       9",
            "===================================================================",
            "total params: 33 (weights 24, biases 9)",
            "dtype: float64 (8 bytes per value)",
            "parameter memory: 264 bytes",
            "loss: mse",
        ]
    )


@pytest.mark.parametrize("dtype,itemsize", [("float32", 4), ("float64", 8)])
def test_totals_dtype_and_memory(dtype, itemsize):
    sizes = [784, 128, 64, 10]
    net = ferrinet.NeuralNetwork(
        sizes, activation=["tanh", "leaky_relu"], loss="cross_entropy", seed=0, dtype=dtype
    )
    text = summary(net)
    lines = text.splitlines()
    assert lines[0] == repr(net)
    rows = [line.split() for line in lines[4:7]]
    assert [r[0] for r in rows] == ["0", "1", "2"]
    assert [r[2] for r in rows] == ["tanh", "leaky_relu", "softmax"]
    assert [r[8] for r in rows] == ["128x784", "64x128", "10x64"]
    params = [int(r[-1].replace(",", "")) for r in rows]
    assert params == [784 * 128 + 128, 128 * 64 + 64, 64 * 10 + 10]
    assert sum(params) == net.n_parameters
    assert f"total params: {net.n_parameters:,} " in text
    n_bytes = net.n_parameters * itemsize
    assert f"parameter memory: {n_bytes:,} bytes ({n_bytes / 2**10:.2f} KiB)" in text
    assert f"dtype: {dtype} ({itemsize} bytes per value)" in text
    assert text.endswith("loss: cross_entropy")
    assert "(n, 128) -> (n, 64)" in text


def test_summary_of_the_reference_network_and_bad_arguments():
    text = summary(reference.NeuralNetwork([3, 2], loss="binary_cross_entropy"))
    assert "    0  Dense  sigmoid     (n, 3) -> (n, 2)" in text
    assert "total params: 8 (weights 6, biases 2)" in text
    assert "dtype: float64" in text
    with pytest.raises(TypeError, match="summary needs a ferrinet network.*builtins.list"):
        summary([2, 3, 1])
    with pytest.raises(TypeError, match="numpy.ndarray"):
        summary(np.zeros(3))
