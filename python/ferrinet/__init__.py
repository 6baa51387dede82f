"""ferrinet: the neural network of "from scratch in Rust", with a correct backward pass.

The maths runs in Rust (`ferrinet._core`); `ferrinet.reference` is the same maths in readable
pure Python, and `gradcheck` / `check_parity` prove the two agree with each other and with
finite differences. See docs/maths.md for the exact formulas.

Training with mini-batches: `NeuralNetwork.fit` (returns a `History`), `train_epoch`,
`evaluate`; optimizers in `ferrinet.optim`, learning-rate schedules in `ferrinet.schedules`,
`EarlyStopping` for `fit(early_stopping=...)`. A diverging run raises `DivergenceError`.

Saving: `net.save(path)` / `ferrinet.load(path)`, `net.to_bytes()` / `ferrinet.from_bytes(data)`
(safetensors files that PyTorch loads into an `nn.Sequential`; docs/saving.md); pickle and
`copy.deepcopy` use the same bytes. A file that cannot be loaded raises `ModelFormatError`.
"""

from . import datasets, io, optim, reference, schedules
from ._core import (
    ACTIVATIONS,
    LOSSES,
    DivergenceError,
    ModelFormatError,
    __version__,
    max_threads,
)
from .checks import GradcheckReport, ParityReport, check_parity, gradcheck
from .io import from_bytes, load
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
    "ModelFormatError",
    "NeuralNetwork",
    "Neuron",
    "ParityReport",
    "TrainingRun",
    "__version__",
    "check_parity",
    "datasets",
    "from_bytes",
    "gradcheck",
    "io",
    "load",
    "max_threads",
    "optim",
    "reference",
    "schedules",
]

# Submodules with optional dependencies load on first use (`ferrinet.plot` needs matplotlib,
# `ferrinet.sklearn` scikit-learn, `ferrinet.onnx` onnx), so `import ferrinet` stays light.
_LAZY = ("inspect", "interop", "onnx", "plot", "sklearn")


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'ferrinet' has no attribute {name!r}")
