"""Type stubs for the compiled extension `ferrinet._core` (rust/ferrinet-py)."""

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, TypeVar, Union

import numpy as np
import numpy.typing as npt
from typing_extensions import TypeAlias, disjoint_base

_ArrayLike: TypeAlias = npt.ArrayLike
_Float64Array: TypeAlias = npt.NDArray[np.float64]
_Network = TypeVar("_Network", bound="NeuralNetwork")

__all__ = [
    "NeuralNetwork",
    "DivergenceError",
    "ModelFormatError",
    "ACTIVATIONS",
    "LOSSES",
    "__version__",
    "KERNELS",
    "_trace",
    "max_threads",
    "_signal_polls",
    "_fsync_directory",
    "_read_all",
]

ACTIVATIONS: List[str]
KERNELS: str  # "avx2+fma" or "baseline": the per-sample kernels this CPU runs
LOSSES: List[str]
__version__: str

class DivergenceError(FloatingPointError):
    """Training diverged: a step would have made the loss or a weight NaN or infinite. The step
    was not applied, so the network keeps the weights of the last finite step."""

class ModelFormatError(ValueError):
    """A saved model (bytes or a file) cannot be loaded: it is truncated, corrupted, not a
    ferrinet file, or of an unsupported format version. The message says what is wrong.
    Loading never executes code from the file."""

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
        dtype: Union[str, type, np.dtype[Any], None] = "float64",
        n_threads: Optional[int] = None,
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
    @property
    def dtype(self) -> str:
        """ "float64" or "float32": what the network computes in and returns."""
    @property
    def n_threads(self) -> int:
        """Threads for large batch products: a large layer's neurons are cut between them
        (the same bits for any count); a small network's batch rows are split instead (the
        same bits for a given count, rounding that may differ between counts). Unless set, the
        default: FERRINET_NUM_THREADS, else OMP_NUM_THREADS, else the CPUs this process may
        use, at most ``max_threads()``. Setting None goes back to the default."""
    @n_threads.setter
    def n_threads(self, n_threads: Optional[int]) -> None: ...
    @property
    def _n_threads_setting(self) -> Optional[int]:
        """The count set, None while the network follows the default."""
    def forward(self, x: _ArrayLike) -> _Float64Array:
        """(n_inputs,) -> (n_outputs,); (n, n_inputs) -> (n, n_outputs)."""
    def predict(self, x: _ArrayLike) -> _Float64Array:
        """(n, n_inputs) -> (n, n_outputs)."""
    def compute_loss(
        self,
        x: _ArrayLike,
        y: _ArrayLike,
        l2: float = 0.0,
        sample_weight: Optional[_ArrayLike] = None,
    ) -> float:
        """The mean loss (weighted by sample_weight; plus (l2 / 2) * sum W**2); no state changes."""
    def gradients(
        self,
        x: _ArrayLike,
        y: _ArrayLike,
        l2: float = 0.0,
        sample_weight: Optional[_ArrayLike] = None,
    ) -> List[Tuple[_Float64Array, _Float64Array]]:
        """[(dW (n_out, n_in), db (n_out,)) per layer] of the mean loss; model unchanged. A
        batch of more than 256 rows is summed block by block (`loss_and_gradient`'s bits),
        without the GIL, looking for Ctrl-C between blocks."""
    def loss_and_gradient(
        self,
        x: _ArrayLike,
        y: _ArrayLike,
        l2: float = 0.0,
        sample_weight: Optional[_ArrayLike] = None,
    ) -> Tuple[float, _Float64Array]:
        """(loss, gradient) over all of (x, y): the mean loss (weighted by sample_weight) plus
        (l2 / 2) * sum W**2, and its gradient as one flat (n_parameters,) array in
        `get_flat_parameters`' layout. One blocked, threaded pass; model unchanged."""
    def _loss_gradient_outputs(
        self,
        x: _ArrayLike,
        y: _ArrayLike,
        l2: float = 0.0,
        sample_weight: Optional[_ArrayLike] = None,
        outputs: bool = True,
    ) -> Tuple[float, _Float64Array, Optional[_Float64Array]]:
        """`loss_and_gradient` and, with `outputs`, every row's output (n, n_outputs) from the
        same forward pass."""
    def get_flat_parameters(self) -> _Float64Array:
        """Every parameter as one (n_parameters,) array, scikit-learn's packing: each layer's
        W.T (n_in, n_out) raveled, then each layer's b. A copy."""
    def set_flat_parameters(self, theta: _ArrayLike) -> None:
        """Replaces every parameter from `get_flat_parameters`' layout; on error nothing changes."""
    def backward(self, x: _ArrayLike, y: _ArrayLike, learning_rate: float) -> float:
        """One SGD step; returns the loss of the forward pass before the step. A batch of more
        than 256 rows takes the step of `gradients`' block-by-block sum, computed without the
        GIL and looking for Ctrl-C between blocks (an interrupt takes no step)."""
    def train(self, x: _ArrayLike, y: _ArrayLike, epochs: int, learning_rate: float) -> List[float]:
        """Per-sample SGD in order, in Rust with the GIL released; mean loss per epoch. A first
        layer of 16,384+ weights and 64+ outputs takes its steps 32 at a time (docs/maths.md):
        the same steps, rounded a few ulps apart, deterministic."""
    def get_weights(self) -> List[Tuple[_Float64Array, _Float64Array]]: ...
    def _copy(self, cls: Type[_Network]) -> _Network: ...
    def set_weights(self, weights: Sequence[Tuple[_ArrayLike, _ArrayLike]]) -> None: ...
    def _layer_equals(self, index: int, coef: Any, intercept: Any) -> bool:
        """Whether `coef` (a float32/float64 array, (n_in, n_out)) holds layer `index`'s
        weights transposed and `intercept` its biases, compared in place (no copy)."""
    def _copy_layer_into(self, index: int, coef: Any, intercept: Any) -> None:
        """Writes layer `index`'s weights transposed into `coef` (writeable, (n_in, n_out),
        the network's dtype) and its biases into `intercept`."""
    def _start_training(self, optimizer: Dict[str, Any], seed: Optional[int]) -> None:
        """Starts the training state: optimizer from a `ferrinet.optim` `to_dict()`, the
        generator of shuffles and dropout seeded with `seed` (None: random), step counter 0."""
    def reset_training(self) -> None:
        """Drops the training state (optimizer moments, step counter, generator)."""
    def _training_info(self) -> Optional[Dict[str, Any]]:
        """{"optimizer", "learning_rate", "steps", "epochs", "seed", "optimizer_config" (the
        flat dict of `ferrinet.optim` objects' `to_dict()`)}, or None without a state."""
    def _to_safetensors(self, training: bool = True, python: Optional[str] = None) -> bytes:
        """The network as a ferrinet safetensors file (docs/saving.md); with `training`, the
        training run too; `python`: a JSON object stored as the "python" metadata."""
    @classmethod
    def _from_safetensors(cls: Type[_Network], data: bytes) -> Tuple[_Network, Optional[str]]:
        """Reads a ferrinet safetensors file -> (an instance of `cls`, the "python" metadata).
        Raises ModelFormatError saying what is wrong with the bytes."""
    def set_learning_rate(self, learning_rate: float) -> None:
        """Sets the learning rate of the next training steps (needs a training state)."""
    def _train_epoch(
        self,
        x: _ArrayLike,
        y: _ArrayLike,
        batch_size: int,
        shuffle: bool,
        l2: float,
        dropout: Sequence[float],
        clip_norm: Optional[float],
        sample_weight: Optional[_ArrayLike],
    ) -> float:
        """One epoch of mini-batch training with the stored state, GIL released; the epoch loss.
        `dropout`: one rate per layer (output layer's 0.0) or empty. Raises DivergenceError."""
    # Sparse (CSR) inputs as their parts: int64 indptr, int32 indices, data in the network's
    # dtype, and (rows, cols); ferrinet.network prepares them from scipy.sparse matrices.
    def _predict_csr(
        self, indptr: _ArrayLike, indices: _ArrayLike, data: _ArrayLike, shape: Tuple[int, int]
    ) -> Any:
        """`predict` of a CSR matrix: the first layer over the nonzeros only."""
    def _compute_loss_csr(
        self,
        indptr: _ArrayLike,
        indices: _ArrayLike,
        data: _ArrayLike,
        shape: Tuple[int, int],
        y: _ArrayLike,
        l2: float = 0.0,
        sample_weight: Optional[_ArrayLike] = None,
    ) -> float:
        """`compute_loss` of a CSR matrix."""
    def _train_epoch_csr(
        self,
        indptr: _ArrayLike,
        indices: _ArrayLike,
        data: _ArrayLike,
        shape: Tuple[int, int],
        y: _ArrayLike,
        batch_size: int,
        shuffle: bool,
        l2: float,
        dropout: Sequence[float],
        clip_norm: Optional[float],
        sample_weight: Optional[_ArrayLike],
    ) -> float:
        """`_train_epoch` of a CSR matrix (the first layer over each mini-batch's nonzeros)."""
    def _train_epoch_csr_measured(
        self,
        indptr: _ArrayLike,
        indices: _ArrayLike,
        data: _ArrayLike,
        shape: Tuple[int, int],
        y: _ArrayLike,
        batch_size: int,
        shuffle: bool,
        l2: float,
        dropout: Sequence[float],
        clip_norm: Optional[float],
        sample_weight: Optional[_ArrayLike],
        accuracy_weight: Optional[_ArrayLike] = None,
    ) -> Tuple[float, Optional[float]]:
        """`_train_epoch_measured` of a CSR matrix -> (loss, running accuracy or None)."""
    def _check_data_csr(
        self,
        indptr: _ArrayLike,
        indices: _ArrayLike,
        data: _ArrayLike,
        shape: Tuple[int, int],
        y: _ArrayLike,
        sample_weight: Optional[_ArrayLike] = None,
        finite: bool = True,
    ) -> None:
        """`_check_data` of a CSR matrix (with `finite` its structure and values too)."""

    def _train_epoch_measured(
        self,
        x: _ArrayLike,
        y: _ArrayLike,
        batch_size: int,
        shuffle: bool,
        l2: float,
        dropout: Sequence[float],
        clip_norm: Optional[float],
        sample_weight: Optional[_ArrayLike],
        accuracy_weight: Optional[_ArrayLike] = None,
    ) -> Tuple[float, Optional[float]]:
        """`_train_epoch` -> (loss, running accuracy or None): a classifier's accuracy counted
        from each batch's outputs as the epoch runs (weighted by `accuracy_weight`)."""
    def _evaluate(
        self, x: _ArrayLike, y: _ArrayLike, sample_weight: Optional[_ArrayLike] = None
    ) -> Tuple[float, Optional[float]]:
        """(loss, accuracy or None): one blocked forward pass, reduced block by block."""
    def _check_data(
        self,
        x: _ArrayLike,
        y: _ArrayLike,
        sample_weight: Optional[_ArrayLike] = None,
        finite: bool = True,
    ) -> None:
        """Shapes, targets and sample weights checked (and with `finite` the inputs' values)."""
    def _stash_training(self) -> None:
        """Keeps a copy of the training state for `_unstash_training`."""
    def _unstash_training(self, restore: bool) -> None:
        """Drops the stashed training state, putting it back first with `restore`."""

def max_threads() -> int:
    """The most threads a network may use here: 4 per available CPU, at most 256."""

def _signal_polls() -> int:
    """How many times long calls have looked for signals (Ctrl-C) in this process."""

def _fsync_directory(path: Union[str, os.PathLike[str]]) -> None:
    """Opens the directory, fsyncs it and closes it in one call (OSError if it cannot)."""

def _read_all(fd: int) -> bytes:
    """The rest of the open file ``fd``, read without the GIL, looking for Ctrl-C per MiB."""

def _trace(net: NeuralNetwork, x: _ArrayLike, y: _ArrayLike) -> Dict[str, Any]:
    """One sample's forward and backward pass with every intermediate (`ferrinet.inspect.trace`):
    {"loss", "target", "layers": [{"activation", "weights", "biases", "input", "z", "a",
    "delta", "grad_weights", "grad_biases", "grad_input"}, ...]}; the network is unchanged."""
