"""ferrinet: the neural network of "from scratch in Rust", with a correct backward pass.

The maths runs in Rust (`ferrinet._core`); `ferrinet.reference` is the same maths in readable
pure Python, and `gradcheck` / `check_parity` prove the two agree with each other and with
finite differences. See docs/maths.md for the exact formulas.

Training with mini-batches: `NeuralNetwork.fit` (returns a `History`), `train_epoch`,
`evaluate`; optimizers in `ferrinet.optim`, learning-rate schedules in `ferrinet.schedules`,
`EarlyStopping` for `fit(early_stopping=...)`. A diverging run raises `DivergenceError`.
"""

from . import datasets, optim, reference, schedules
from ._core import ACTIVATIONS, LOSSES, DivergenceError, __version__
from .checks import GradcheckReport, ParityReport, check_parity, gradcheck
from .network import Layer, NeuralNetwork, Neuron, TrainingRun
from .training import EarlyStopping, History

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "DivergenceError",
    "EarlyStopping",
    "GradcheckReport",
    "History",
    "Layer",
    "NeuralNetwork",
    "Neuron",
    "ParityReport",
    "TrainingRun",
    "__version__",
    "check_parity",
    "datasets",
    "gradcheck",
    "optim",
    "reference",
    "schedules",
]
