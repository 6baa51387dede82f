"""Training a ferrinet network with scipy's L-BFGS-B, through the flat loss-and-gradient entry.

``net.loss_and_gradient(X, Y, l2)`` returns the full-batch loss and its gradient with respect
to every parameter as one flat vector (scikit-learn's packing, ``net.get_flat_parameters()``),
made in Rust in one forward and one backward pass. That is what a general-purpose optimizer
wants: here ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)`` trains a 2-16-2 network
on the two moons, full batch, with no learning rate to tune.

Run:  python examples/scipy_lbfgs.py      (exits with an error if the accuracy is below 97%)
"""

# expect: L-BFGS-B: loss 0\.\d+ -> 0\.0\d+ in \d+ iterations, accuracy (0\.9[7-9]\d|1\.000)

import sys

import ferrinet
import numpy as np
from ferrinet import datasets
from scipy.optimize import minimize


def main() -> None:
    X, y = datasets.moons(400, noise=0.1, seed=0)
    net = ferrinet.NeuralNetwork([2, 16, 2], activation="tanh", loss="cross_entropy", seed=0)

    def objective(theta: np.ndarray):
        # scipy hands a float64 vector in get_flat_parameters' layout; the network takes it
        # and returns (mean loss + l2 / 2 * sum W**2, the gradient in the same layout)
        net.set_flat_parameters(theta)
        return net.loss_and_gradient(X, y, l2=1e-4)

    theta0 = net.get_flat_parameters()
    start = objective(theta0)[0]
    result = minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    net.set_flat_parameters(result.x)  # the network holds the optimum found
    accuracy = net.evaluate(X, y)["accuracy"]
    print(
        f"L-BFGS-B: loss {start:.3f} -> {result.fun:.4f} in {result.nit} iterations, "
        f"accuracy {accuracy:.3f}"
    )
    if accuracy < 0.97:
        sys.exit(f"accuracy {accuracy:.3f} is below 0.97")


if __name__ == "__main__":
    main()
