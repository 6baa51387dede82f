"""ONNX: export a trained network, run it in onnxruntime, get the same answers.

``ferrinet.onnx.to_onnx(net, path)`` writes a standard ONNX graph (Gemm and activation nodes,
input "input" (batch, n_inputs), output "output") that computes what ``net.predict`` computes,
in the network's dtype. Any ONNX runtime can then serve the model without ferrinet. Here: an
iris classifier in float64 and a digits classifier in float32, each exported, loaded by
onnxruntime and compared with ferrinet on the test data.

Needs ``pip install ferrinet[onnx] onnxruntime``.

Run:  python examples/onnx_export.py [--out DIR]
      (the .onnx files go to DIR, default a temporary directory removed at the end; exits
      with an error if onnxruntime disagrees with ferrinet)
"""

# expect: onnxruntime agrees with ferrinet: float64 max difference \S+ \(<= 1e-12\), float32 \S+ \(<= 1e-5\)

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Tuple

import ferrinet
import ferrinet.onnx
import numpy as np
import onnxruntime
from ferrinet import datasets


def train(dataset: str, dtype: str) -> Tuple[ferrinet.NeuralNetwork, np.ndarray, np.ndarray]:
    """A small classifier trained on the training part; returns it with the test data."""
    X, y = datasets.iris() if dataset == "iris" else datasets.digits()
    X_train, X_test, y_train, y_test = datasets.train_test_split(
        X, y, test_size=0.25, seed=0, stratify=True
    )
    X_train, X_test = datasets.standardize(X_train, X_test)
    hidden, activation = (16, "tanh") if dataset == "iris" else (32, "leaky_relu")
    net = ferrinet.NeuralNetwork(
        [X.shape[1], hidden, int(y.max()) + 1],
        activation=activation,
        loss="cross_entropy",
        seed=0,
        dtype=dtype,
    )
    net.fit(X_train, y_train, epochs=150, learning_rate=0.01, verbose=0)
    return net, X_test.astype(dtype), y_test


def run_onnx(path: Path, X: np.ndarray) -> np.ndarray:
    """Run the exported file in onnxruntime (no ferrinet involved)."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inputs,), (outputs,) = session.get_inputs(), session.get_outputs()
    print(
        f"  onnxruntime sees {inputs.name} {inputs.shape} {inputs.type} -> "
        f"{outputs.name} {outputs.shape} {outputs.type}"
    )
    (result,) = session.run([outputs.name], {inputs.name: X})
    return np.asarray(result)


def main(out: Path) -> None:
    differences = {}
    for dataset, dtype in (("iris", "float64"), ("digits", "float32")):
        net, X_test, y_test = train(dataset, dtype)
        path = out / f"{dataset}-{dtype}.onnx"
        ferrinet.onnx.to_onnx(net, path)  # also returns the onnx.ModelProto
        print(f"{dataset}: {net}\n  wrote {path.name} ({path.stat().st_size:,} bytes)")

        ours = net.predict(X_test)  # softmax probabilities, (n, n_classes)
        theirs = run_onnx(path, X_test)
        difference = float(np.max(np.abs(ours.astype(np.float64) - theirs)))
        agree = np.mean(ours.argmax(axis=1) == theirs.argmax(axis=1))
        accuracy = np.mean(theirs.argmax(axis=1) == y_test)
        print(
            f"  {len(X_test)} test samples: max |ferrinet - onnxruntime| = {difference:.1e}, "
            f"same class for {agree:.0%}, accuracy {accuracy:.1%} in onnxruntime"
        )
        differences[dtype] = difference

    print(
        f"\nonnxruntime agrees with ferrinet: float64 max difference "
        f"{differences['float64']:.1e} (<= 1e-12), float32 {differences['float32']:.1e} (<= 1e-5)"
    )
    if differences["float64"] > 1e-12 or differences["float32"] > 1e-5:
        sys.exit("FAILED: the exported graph does not compute what ferrinet computes")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the .onnx files in this directory")
    args = parser.parse_args()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        main(args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="ferrinet-onnx-") as tmp:
            main(Path(tmp))
