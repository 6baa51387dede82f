"""Regression: a 1-32-32-1 tanh network learns y = sin(x) from 300 noisy samples.

The output layer is the identity (the default for ``loss="mse"``), so the network can output
negative numbers: the article's network applied ReLU to its output too (erratum 6) and could
not. The data are noisy (standard deviation 0.1), so even the true sine cannot score a test
R^2 of 1; the script prints that ceiling next to the network's score.

Run:  python examples/regression.py       (exits with an error if the test R^2 < 0.95)
"""

# expect: test R\^2 = 0\.9\d+ \(the noise allows at most 0\.9\d+\)

import sys

import ferrinet
import numpy as np
from ferrinet import datasets


def r_squared(prediction: np.ndarray, target: np.ndarray) -> float:
    """1 - (residual sum of squares) / (total sum of squares)."""
    return 1.0 - float(np.sum((prediction - target) ** 2) / np.sum((target - target.mean()) ** 2))


def main() -> None:
    # x uniform in [-pi, pi], y = sin(x) + N(0, 0.1^2); shapes (300, 1) and (300, 1)
    X, Y = datasets.sine(300, noise=0.1, seed=0)
    X_train, X_test, Y_train, Y_test = datasets.train_test_split(X, Y, test_size=0.25, seed=0)

    net = ferrinet.NeuralNetwork([1, 32, 32, 1], activation="tanh", loss="mse", seed=0)
    history = net.fit(
        X_train,
        Y_train,
        epochs=300,
        batch_size=16,
        optimizer="adam",
        learning_rate=0.01,
        schedule=ferrinet.schedules.CosineAnnealingLR(T_max=300),  # decay the step to 0
        verbose=0,
    )
    print(f"{net}: {net.n_parameters} parameters")
    print(
        f"training mse: epoch 1 {history.loss[0]:.4f} -> epoch {len(history)} {history.loss[-1]:.4f}"
        f" (the noise variance is {0.1**2:.4f})"
    )

    print("\n      x   sin(x)  network")
    for x in np.linspace(-3.0, 3.0, 7):
        print(f"  {x:5.1f}  {np.sin(x):7.3f}  {net.predict([[x]])[0, 0]:7.3f}")

    score = r_squared(net.predict(X_test), Y_test)
    ceiling = r_squared(np.sin(X_test), Y_test)  # what the noise-free function itself scores
    print(f"\ntest R^2 = {score:.3f} (the noise allows at most {ceiling:.3f})")
    if score < 0.95:
        sys.exit(f"FAILED: test R^2 {score:.3f} < 0.95")


if __name__ == "__main__":
    main()
