"""Type stubs for the compiled extension `ferrinet._core` (rust/ferrinet-py)."""

from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt
from typing_extensions import TypeAlias, disjoint_base

_ArrayLike: TypeAlias = npt.ArrayLike
_Float64Array: TypeAlias = npt.NDArray[np.float64]

__all__ = ["NeuralNetwork", "ACTIVATIONS", "LOSSES", "__version__"]

ACTIVATIONS: List[str]
LOSSES: List[str]
__version__: str

@disjoint_base
class NeuralNetwork:
    """A fully connected network computed in Rust; see `ferrinet.NeuralNetwork`."""

    def __new__(
        cls,
        sizes: Sequence[int],
        activation: Union[str, Sequence[str], None] = "relu",
        output_activation: Optional[str] = None,
        loss: Optional[str] = "mse",
        seed: Optional[int] = 0,
    ) -> "NeuralNetwork": ...
    @property
    def sizes(self) -> List[int]: ...
    @property
    def activations(self) -> List[str]: ...
    @property
    def loss(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def n_parameters(self) -> int: ...
    def forward(self, x: _ArrayLike) -> _Float64Array:
        """(n_inputs,) -> (n_outputs,); (n, n_inputs) -> (n, n_outputs)."""
    def predict(self, x: _ArrayLike) -> _Float64Array:
        """(n, n_inputs) -> (n, n_outputs)."""
    def compute_loss(self, x: _ArrayLike, y: _ArrayLike) -> float: ...
    def gradients(self, x: _ArrayLike, y: _ArrayLike) -> List[Tuple[_Float64Array, _Float64Array]]:
        """[(dW (n_out, n_in), db (n_out,)) per layer] of the mean loss; model unchanged."""
    def backward(self, x: _ArrayLike, y: _ArrayLike, learning_rate: float) -> float:
        """One SGD step; returns the loss of the forward pass before the step."""
    def train(self, x: _ArrayLike, y: _ArrayLike, epochs: int, learning_rate: float) -> List[float]:
        """Per-sample SGD in order, in Rust with the GIL released; mean loss per epoch."""
    def get_weights(self) -> List[Tuple[_Float64Array, _Float64Array]]: ...
    def set_weights(self, weights: Sequence[Tuple[_ArrayLike, _ArrayLike]]) -> None: ...
