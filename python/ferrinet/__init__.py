"""ferrinet: the neural network of "from scratch in Rust", with a correct backward pass.

The maths runs in Rust (`ferrinet._core`); `ferrinet.reference` is the same maths in readable
pure Python, and `gradcheck` / `check_parity` prove the two agree with each other and with
finite differences. See docs/maths.md for the exact formulas.
"""

from . import datasets, reference
from ._core import ACTIVATIONS, LOSSES, __version__
from .checks import GradcheckReport, ParityReport, check_parity, gradcheck
from .network import Layer, NeuralNetwork, Neuron

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "GradcheckReport",
    "Layer",
    "NeuralNetwork",
    "Neuron",
    "ParityReport",
    "__version__",
    "check_parity",
    "datasets",
    "gradcheck",
    "reference",
]
