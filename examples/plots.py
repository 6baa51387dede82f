"""Pictures with ferrinet.plot: training curves, a decision boundary and a grid of digits.

Three PNG files, each from one call that returns the matplotlib Figure and writes the file:

- ``history.png``: ``plot_history(history)``: the training and validation loss per epoch and
  the accuracies, the best epoch of early stopping marked (two moons, 2-16-16-1, fit);
- ``boundary.png``: ``plot_decision_boundary(net, X, y)``: the class the network predicts over
  the plane, the points on top, the misclassified ones crossed out;
- ``digits.png``: ``plot_digits(images, labels, predictions)``: 8x8 test digits titled with the
  true and the predicted class, mistakes in red (a deliberately small 64-8-10 network, so that
  there are some).

The figures are drawn off-screen (matplotlib's Agg canvas; no window, no display needed).
Needs matplotlib (``pip install ferrinet[plot]``).

Run:  python examples/plots.py [--out DIR]
      (default: a new temporary directory, kept so that you can look at the pictures)
"""

# expect: wrote 3 PNG files to \S+: boundary\.png \(\d+x\d+\), digits\.png \(\d+x\d+\), history\.png \(\d+x\d+\)

import argparse
import sys
import tempfile
from pathlib import Path

import ferrinet
import numpy as np
from ferrinet import datasets
from ferrinet.plot import plot_decision_boundary, plot_digits, plot_history
from matplotlib.image import imread


def main(out: Path) -> None:
    # Two moons: one sigmoid output, binary cross-entropy; validation on the last 20%.
    X, y = datasets.moons(300, noise=0.2, seed=0)
    net = ferrinet.NeuralNetwork(
        [2, 16, 16, 1], activation="relu", loss="binary_cross_entropy", seed=0
    )
    history = net.fit(
        X,
        y,
        epochs=300,
        learning_rate=0.01,
        validation_split=0.2,
        early_stopping={"patience": 20},
        verbose=0,
    )
    print(f"moons: {history}")
    plot_history(history, path=out / "history.png")
    plot_decision_boundary(net, X, y, path=out / "boundary.png")

    # Digits: a small network, and the first 40 test images with its predictions.
    images, labels = datasets.digits()
    X_train, X_test, y_train, y_test = datasets.train_test_split(
        images, labels, test_size=0.25, seed=0, stratify=True
    )
    small = ferrinet.NeuralNetwork([64, 8, 10], loss="cross_entropy", seed=0)
    small.fit(X_train / 16.0, y_train, epochs=15, learning_rate=0.01, verbose=0)
    predictions = small.predict(X_test[:40] / 16.0)  # probabilities; plot_digits takes argmax
    wrong = int(np.sum(predictions.argmax(axis=1) != y_test[:40]))
    print(f"digits: {small}: {wrong} of the first 40 test images wrong")
    plot_digits(X_test[:40], y_test[:40], predictions, ncols=10, path=out / "digits.png")

    # Check what was written: real PNG files, of the size of the figures.
    sizes = []
    for path in sorted(out.glob("*.png")):
        if path.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            sys.exit(f"FAILED: {path} is not a PNG file")
        height, width = imread(path).shape[:2]
        sizes.append(f"{path.name} ({width}x{height})")
    print(f"\nwrote {len(sizes)} PNG files to {out}: {', '.join(sizes)}")
    if len(sizes) != 3:
        sys.exit(f"FAILED: expected 3 pictures in {out}, found {len(sizes)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="directory for the PNG files (created if needed)")
    args = parser.parse_args()
    if args.out is None:
        args.out = Path(tempfile.mkdtemp(prefix="ferrinet-plots-"))
    args.out.mkdir(parents=True, exist_ok=True)
    main(args.out)
