"""`ferrinet.NeuralNetwork`: the Rust network with the article's `layers` / `neurons` picture.

The numerics, argument checking and GIL handling all live in the Rust class
`ferrinet._core.NeuralNetwork`; this subclass only adds conveniences that are easier to read in
Python: `layers` (snapshots of `Layer` and `Neuron`), `copy`, `repr`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np

from . import _core


@dataclass(frozen=True)
class Neuron:
    """One neuron: row i of its layer's weight matrix and bias i (a copy)."""

    weights: np.ndarray  # (n_inputs,)
    bias: float


@dataclass(frozen=True)
class Layer:
    """A snapshot of one layer: weights (n_outputs, n_inputs), row i = neuron i; biases (n_outputs,)."""

    weights: np.ndarray
    biases: np.ndarray
    activation: str

    @property
    def n_inputs(self) -> int:
        return self.weights.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.weights.shape[0]

    @property
    def neurons(self) -> List[Neuron]:
        return [Neuron(row.copy(), float(b)) for row, b in zip(self.weights, self.biases)]


class NeuralNetwork(_core.NeuralNetwork):
    """A fully connected network: ``sizes = [n_inputs, hidden..., n_outputs]``.

    Parameters
    ----------
    sizes : list of int
        Layer widths, input first. ``[2, 8, 1]`` is one hidden layer of 8.
    activation : str or list of str, default "relu"
        Hidden activation(s): one name for all hidden layers or one per hidden layer. Names:
        ``identity`` (alias ``linear``), ``relu``, ``leaky_relu``, ``sigmoid``, ``tanh``.
    output_activation : str or None
        Defaults to the loss's: ``identity`` for mse, ``sigmoid`` for binary_cross_entropy,
        ``softmax`` for cross_entropy.
    loss : {"mse", "binary_cross_entropy", "cross_entropy"}
        Mean reductions as PyTorch's MSELoss, BCEWithLogitsLoss and CrossEntropyLoss.
    seed : int or None, default 0
        Seeds the SplitMix64 generator that draws the initial weights (He-uniform for the relu
        family, Glorot-uniform otherwise; biases 0). ``None`` draws a random seed, readable
        afterwards as ``net.seed``.

    Every method accepts NumPy arrays of any real dtype and memory layout, lists and tuples,
    and returns new float64 arrays that never alias the model. Bad input raises ValueError or
    TypeError and leaves the model unchanged. Long calls release the GIL and stop on Ctrl-C.
    Several threads may share one network: calls are serialised by an internal lock (training
    releases it between chunks of steps), so each call sees a consistent set of weights.
    """

    @property
    def layers(self) -> List[Layer]:
        """Snapshots (copies) of every layer, input side first."""
        return [
            Layer(w, b, act) for (w, b), act in zip(self.get_weights(), self.activations)
        ]

    def copy(self) -> "NeuralNetwork":
        """An independent network with the same architecture and weights."""
        clone = type(self)(
            self.sizes,
            activation=self.activations[:-1],
            output_activation=self.activations[-1],
            loss=self.loss,
            seed=self.seed,
        )
        clone.set_weights(self.get_weights())
        return clone

    def __repr__(self) -> str:
        hidden = self.activations[:-1]
        act = hidden[0] if hidden and len(set(hidden)) == 1 else hidden
        return (
            f"NeuralNetwork({self.sizes}, activation={act!r}, "
            f"output_activation={self.activations[-1]!r}, loss={self.loss!r}, seed={self.seed})"
        )
