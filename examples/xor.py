"""XOR, the blog post's own example: a 2-8-1 network learns the four cases exactly.

XOR cannot be drawn with one straight line, so it needs a hidden layer. This is the article's
setting: relu hidden units, the mean squared error, and its training loop (per-sample SGD,
``net.train``, run entirely in Rust). Then the same problem as a classifier trained with
``fit``: a sigmoid output and the binary cross-entropy.

Run:  python examples/xor.py       (exits with an error if a case is wrong)
"""

# expect: XOR learned: 4 of 4 cases right with train \(mse\) and 4 of 4 with fit \(binary cross-entropy\)

import sys

import ferrinet
import numpy as np
from ferrinet import datasets


def main() -> None:
    X, Y = datasets.xor()  # X: the 4 corners of the unit square; Y: x0 XOR x1, shape (4, 1)

    # 1. The article's loop: one SGD step per sample, in order, 200 times over the data.
    net = ferrinet.NeuralNetwork([2, 8, 1], activation="relu", loss="mse", seed=0)
    losses = net.train(X, Y, epochs=200, learning_rate=0.05)  # the mean loss of each epoch
    print(f"{net}")
    print(f"mean squared error: epoch 1 {losses[0]:.4f} -> epoch 200 {losses[-1]:.2e}")

    outputs = net.predict(X)  # (4, 1): a regression output, read as a class at 0.5
    print("\n  x0 x1  target  output")
    for x, t, o in zip(X, Y, outputs):
        print(f"  {x[0]:2.0f} {x[1]:2.0f}  {t[0]:6.0f}  {round(o[0], 3) + 0.0:6.3f}")
    right_mse = int(np.sum((outputs > 0.5) == (Y > 0.5)))

    # 2. The same problem as a classifier: sigmoid output, binary cross-entropy (PyTorch's
    #    BCEWithLogitsLoss), full-batch Adam with fit.
    clf = ferrinet.NeuralNetwork([2, 8, 1], activation="tanh", loss="binary_cross_entropy", seed=0)
    history = clf.fit(X, Y, epochs=300, batch_size=4, learning_rate=0.05, verbose=0)
    probabilities = clf.predict(X)  # sigmoid outputs in (0, 1)
    right_bce = int(np.sum((probabilities >= 0.5) == (Y >= 0.5)))
    print(f"\n{clf}")
    print(
        f"binary cross-entropy after {history.epochs_completed} epochs: {history.loss[-1]:.4f};"
        f" P(class 1) = {np.round(probabilities[:, 0], 3).tolist()}"
    )

    print(
        f"\nXOR learned: {right_mse} of 4 cases right with train (mse) and {right_bce} of 4 "
        "with fit (binary cross-entropy)"
    )
    if right_mse != 4 or right_bce != 4:
        sys.exit("FAILED: XOR was not learned")


if __name__ == "__main__":
    main()
