"""`ferrinet.NeuralNetwork`: the Rust network with the article's `layers` / `neurons` picture.

The numerics, argument checking and GIL handling all live in the Rust class
`ferrinet._core.NeuralNetwork`; this subclass only adds conveniences that are easier to read in
Python: `layers` (snapshots of `Layer` and `Neuron`), `copy`, `repr`, mini-batch training:
`train_epoch` (checks its options, turns class weights into sample weights, then runs the epoch
in Rust) and, from `ferrinet.training.FitMixin`, `fit` and `evaluate`; and saving: `save` /
`load`, `to_bytes` / `from_bytes` (safetensors files PyTorch reads, see `ferrinet.io` and
docs/saving.md), which pickle and `copy.deepcopy` use too.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from . import io as _io
from ._sparse import csr_parts, is_sparse
from ._validate import seed as _seed
from .optim import make_optimizer
from .training import FitMixin, _batch_length, check_epoch_options


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


#: A file path: a str or an os.PathLike.
PathLike = Union[str, "os.PathLike[str]"]


class TrainingRun:
    """The training run of a ``ferrinet.NeuralNetwork`` as Python sees it (``net.training_state``).

    ``optimizer`` (the ``ferrinet.optim`` object the run was started with; None if the run was
    started by ``_start_training`` directly) and ``seed`` are fixed for the run; ``epoch``
    (epochs done), ``t`` (optimizer steps taken) and ``lr`` (the learning rate of the next step)
    are read from the Rust core whenever ``net.training_state`` is read. The optimizer's moments
    and the generator live in Rust and are not visible here.
    """

    def __init__(self, optimizer, seed: int):
        self.optimizer = optimizer
        self.seed = seed
        self.epoch = 0
        self.t = 0
        self.lr = 0.0
        self.optimizer_name = optimizer.name if optimizer is not None else ""

    def _update(self, info: Dict[str, Any]) -> "TrainingRun":
        self.epoch = info["epochs"]
        self.t = info["steps"]
        self.lr = info["learning_rate"]
        self.optimizer_name = info["optimizer"]
        return self

    def __repr__(self) -> str:
        return (
            f"TrainingRun(optimizer={self.optimizer!r}, seed={self.seed}, epoch={self.epoch}, "
            f"t={self.t}, lr={self.lr!r})"
        )


class NeuralNetwork(FitMixin, _core.NeuralNetwork):
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
        ``softmax`` for cross_entropy, ``exp`` for poisson.
    loss : {"mse", "binary_cross_entropy", "cross_entropy", "poisson"}
        Mean reductions as PyTorch's MSELoss, BCEWithLogitsLoss and CrossEntropyLoss; poisson:
        half the Poisson deviance from the log-rate z, ``exp(z) - t z + t ln t - t`` (targets
        >= 0; scikit-learn's ``MLPRegressor(loss="poisson")``, docs/maths.md).
    seed : int or None, default 0
        Seeds the SplitMix64 generator that draws the initial weights (He-uniform for the relu
        family, Glorot-uniform otherwise; biases 0). ``None`` draws a random seed, readable
        afterwards as ``net.seed``.

    Every method accepts NumPy arrays of any real dtype and memory layout, lists and tuples,
    and returns new float64 arrays that never alias the model. Bad input raises ValueError or
    TypeError and leaves the model unchanged. Long calls release the GIL and stop on Ctrl-C.
    Several threads may share one network: calls are serialised by an internal lock (training
    releases it between chunks of steps; ``train_epoch`` holds it for one epoch), so each call
    sees a consistent set of weights.

    dtype : {"float64", "float32"}, default "float64"
        What the network stores and computes in (and returns).
    n_threads : int or None, default None
        Threads for large batches, at most ``ferrinet.max_threads()``. None (also settable
        later: ``net.n_threads = None``) is the default: ``FERRINET_NUM_THREADS``, else
        ``OMP_NUM_THREADS`` (set by joblib's loky workers to cores / n_jobs), else the CPUs
        this process may use (its affinity mask), read once per process. An invalid
        ``FERRINET_NUM_THREADS`` is a ValueError naming it. Results are the same bits for a
        given count and may differ in rounding between counts: set the count to reproduce a
        run elsewhere. ``save`` records a count that was set, and the default as ``null``.

    Training with mini-batches: ``fit`` (epochs, validation, early stopping, schedules,
    callbacks, progress), ``train_epoch`` (one epoch), ``evaluate``. The training state (the
    optimizer's moments and step count, the generator of shuffles and dropout masks, the current
    learning rate) lives with the network in Rust; ``training_state`` describes it,
    ``reset_training()`` drops it, ``set_learning_rate`` changes the learning rate.

    Saving: ``save(path)`` / ``NeuralNetwork.load(path)`` and ``to_bytes()`` /
    ``NeuralNetwork.from_bytes(data)``: safetensors files that PyTorch loads into an
    ``nn.Sequential``, holding the training run too, so that training continues exactly after a
    load (docs/saving.md). Pickle and ``copy.deepcopy`` use the same bytes.
    """

    # train_epoch (Rust) raises DivergenceError itself and keeps the last finite weights
    _guards_divergence = True

    # ----- saving and loading
    def to_bytes(self, *, training: bool = True) -> bytes:
        """The network as the bytes of a safetensors file (what ``save`` writes; docs/saving.md).

        Tensors ``0.weight`` (n_1, n_0), ``0.bias`` (n_1,), ``2.weight``, ``2.bias``, ...: the
        parameter names of a PyTorch ``nn.Sequential`` of ``nn.Linear`` layers with an
        activation module after each, in the network's dtype (F64 or F32). The metadata
        (``__metadata__``, str -> str) holds ``format`` ("ferrinet"), ``format_version``
        ("1"), ``architecture`` (JSON: sizes, activations with the output's, loss, dtype, seed,
        n_threads), ``data_crc32`` (CRC-32 of the tensor data) and, with ``training=True`` and
        a training run, ``training`` (JSON: the optimizer, learning rate, step and epoch
        counters, seed and state of the generator, and every optimizer moment exactly, as
        base64 of little-endian values) and ``python`` (JSON: fit's schedule and its state).
        ``training=False`` keeps the weights and architecture only.

        Deterministic: the same network gives the same bytes. A training run whose moments
        take more than the 100 MB a safetensors header may hold raises ValueError (save with
        ``training=False``).
        """
        training = _io.check_flag(training, "training")
        python = _io.encode_python_state(self) if training else None
        return self._to_safetensors(training, python)

    def save(self, path: PathLike, *, training: bool = True) -> None:
        """Writes ``to_bytes(training=training)`` to ``path`` (a str or os.PathLike),
        atomically: a temporary file in the same directory is written, fsynced and renamed over
        ``path``, so an error or a crash mid-save leaves any old file untouched (an error also
        removes the temporary file). ``ferrinet.load(path)`` reads it back; so does PyTorch::

            sd = safetensors.torch.load_file(path)      # for NeuralNetwork([2, 8, 1])
            nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1)).double().load_state_dict(sd)
        """
        path = _io.fspath(path)
        _io.write_atomic(path, self.to_bytes(training=training))

    @classmethod
    def from_bytes(cls, data: Any) -> "NeuralNetwork":
        """The network held by ``data`` (bytes, bytearray or memoryview, as ``to_bytes``
        returns), as an instance of ``cls``: architecture, dtype, weights, ``n_threads``, and
        the training run when there is one, so that ``train_epoch`` and
        ``fit(warm_start=True)`` continue exactly as they would have without the break
        (``training_state.optimizer`` is rebuilt as a ``ferrinet.optim`` object).

        Nothing in the bytes is executed. Truncated, corrupted or hostile bytes, a file that is
        not ferrinet's, or one of another format version raise ``ferrinet.ModelFormatError``
        (a ValueError) saying what is wrong; every size in them is checked against the bytes
        there are before anything is built from it.
        """
        net, python = cls._from_safetensors(_io.as_bytes(data))
        try:
            net._restore_run(python)
        except _io.ModelFormatError:
            raise
        except (KeyError, TypeError, ValueError, ArithmeticError, RecursionError) as err:
            # every field is checked above; this is the net under them: whatever a file holds,
            # the loader raises ModelFormatError
            raise _io.ModelFormatError(
                f"the file's training run cannot be restored: {type(err).__name__}: {err}"
            ) from err
        return net

    @classmethod
    def load(cls, path: PathLike) -> "NeuralNetwork":
        """The network saved at ``path`` (a str or os.PathLike) by ``save``, as an instance of
        ``cls`` (see ``from_bytes``). OSError when the file cannot be read."""
        return cls.from_bytes(_io.read_file(path))

    def _restore_run(self, python: Optional[str]) -> None:
        """After loading: the Python side of the core's training run (the optimizer object,
        fit's schedule) from the file."""
        self.__dict__["_run"] = None
        self.__dict__["_fit_record"] = None
        info = self._training_info()
        if info is None:
            return
        run = TrainingRun(_io.optimizer_from_config(info["optimizer_config"]), info["seed"])
        self.__dict__["_run"] = run._update(info)
        fit = _io.decode_python_state(python)
        if fit is not None:
            self.__dict__["_fit_record"] = _io.fit_record(run, fit)

    def __reduce__(self):
        """Pickle, ``copy.copy`` and ``copy.deepcopy`` go through ``to_bytes``: the copy has the
        same class, dtype, weights, ``n_threads`` and training run (bit for bit), and the other
        attributes of a subclass instance."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_run", "_fit_record")}
        return (_from_bytes_for_pickle, (type(self), self.to_bytes()), state or None)

    @property
    def layers(self) -> List[Layer]:
        """Snapshots (copies) of every layer, input side first."""
        return [Layer(w, b, act) for (w, b), act in zip(self.get_weights(), self.activations)]

    def copy(self) -> "NeuralNetwork":
        """An independent network with the same class, architecture, weights, seed, dtype and
        ``n_threads`` setting, and no training run; a subclass instance's other attributes
        are copied shallowly (as ``copy.copy`` copies them). The weights are copied by Rust,
        a large network's without the GIL and in chunks with a look for Ctrl-C between them
        (KeyboardInterrupt: no copy, this network unchanged)."""
        clone = self._copy(type(self))
        state = {k: v for k, v in self.__dict__.items() if k not in ("_run", "_fit_record")}
        clone.__dict__.update(state)
        clone.__dict__["_run"] = None
        clone.__dict__["_fit_record"] = None
        return clone

    def __repr__(self) -> str:
        hidden = self.activations[:-1]
        act = hidden[0] if hidden and len(set(hidden)) == 1 else hidden
        dtype = ", dtype='float32'" if self.dtype == "float32" else ""
        return (
            f"NeuralNetwork({self.sizes}, activation={act!r}, "
            f"output_activation={self.activations[-1]!r}, loss={self.loss!r}, seed={self.seed}"
            f"{dtype})"
        )

    def _repr_html_(self) -> str:
        """Jupyter's rich display: the ``summary()`` table as HTML."""
        from ._html import network_html

        return network_html(self)

    # ----- inspection and export (the functions live in ferrinet.inspect / ferrinet.onnx)
    def summary(self) -> str:
        """A table of the layers: shapes, activations, parameter counts, dtype, loss, memory
        (``ferrinet.inspect.summary``)."""
        from .inspect import summary

        return summary(self)

    def trace(self, x: Any, y: Any) -> Any:
        """For one sample, every layer's input, z, a, delta and gradients, per neuron, computed
        by the Rust core (``ferrinet.inspect.trace``): the backward pass made visible."""
        from .inspect import trace

        return trace(self, x, y)

    def to_onnx(self, path: Optional[PathLike] = None, **options: Any) -> Any:
        """Export to ONNX (``ferrinet.onnx.to_onnx``; needs ``pip install ferrinet[onnx]``):
        returns the ``onnx.ModelProto`` and writes it atomically to ``path`` if given."""
        from .onnx import to_onnx

        return to_onnx(self, path, **options)

    # ----- training state
    @property
    def training_state(self) -> Optional[TrainingRun]:
        """The current training run (a ``TrainingRun``: optimizer, seed, epoch, t, lr), or None
        before ``train_epoch`` / ``fit`` and after ``reset_training()``. The same object for
        the whole run; its counters are refreshed from the core on every read."""
        info = self._training_info()
        run = self.__dict__.get("_run")
        if info is None:
            if run is not None:
                self.__dict__["_run"] = None
            return None
        if (
            run is None
            or run.seed != info["seed"]
            or (run.optimizer is not None and run.optimizer.name != info["optimizer"])
        ):
            run = TrainingRun(None, info["seed"])  # started by _start_training directly
            self.__dict__["_run"] = run
        return run._update(info)

    @property
    def learning_rate(self) -> Optional[float]:
        """The learning rate of the next training step; None without a training run."""
        info = self._training_info()
        return None if info is None else info["learning_rate"]

    def reset_training(self) -> None:
        """Forget the training run (optimizer moments, step count, generator, learning rate,
        fit's schedule); the weights stay."""
        super().reset_training()
        self.__dict__["_run"] = None
        self.__dict__["_fit_record"] = None

    def _start_run(self, optimizer, seed) -> None:
        """Start a training run in the core: optimizer state at zero, generator seeded."""
        self._start_training(optimizer.to_dict(), seed)
        self.__dict__["_run"] = None
        run = self.training_state
        assert run is not None
        run.optimizer = optimizer

    # ----- sparse inputs (scipy.sparse CSR / CSC): routed to the core's sparse paths
    def predict(self, X: Any) -> Any:
        """Batch forward: (n, n_inputs) -> (n, n_outputs). ``X`` may also be a scipy.sparse
        CSR / CSC matrix or array: the first layer then runs over its nonzeros only."""
        if is_sparse(X):
            return self._predict_csr(*csr_parts(X, self.dtype))
        return super().predict(X)

    def compute_loss(self, X: Any, Y: Any, l2: float = 0.0, sample_weight: Any = None) -> float:
        """The mean loss (plus ``l2 / 2`` times the sum of squared weights); ``X`` dense or
        scipy.sparse CSR / CSC."""
        if is_sparse(X):
            return self._compute_loss_csr(*csr_parts(X, self.dtype), Y, l2, sample_weight)
        return super().compute_loss(X, Y, l2=l2, sample_weight=sample_weight)

    # ----- the flat entry for general-purpose optimizers (scipy.optimize, ferrinet.sklearn)
    def loss_and_gradient(
        self, X: Any, Y: Any, l2: float = 0.0, sample_weight: Any = None
    ) -> Tuple[float, np.ndarray]:
        """The full-batch objective and its gradient, for an optimizer that works on one flat
        vector of parameters (``scipy.optimize.minimize(..., jac=True)``, docs/api.md)::

            L(theta) = sum_k w_k l_k / sum_k w_k  +  (l2 / 2) * sum over layers of ||W||^2

        with l_k sample k's loss as ``compute_loss`` defines it (docs/maths.md; w_k = 1
        without ``sample_weight``, the plain mean over the n samples) and theta every
        parameter in ``get_flat_parameters``' layout. Returns ``(L, dL/dtheta)``: a float and
        a new 1-D array of ``n_parameters`` values in the network's dtype, in that layout.
        The value is ``compute_loss(X, Y, l2, sample_weight)``'s, bit for bit.

        Rust makes it in one forward and one backward pass over blocks of 256 rows, several
        blocks at once with ``n_threads``, adding the blocks' gradients in block order: the
        same bits for any thread count, memory for a block's activations per thread (not the
        whole batch's), the GIL released and Ctrl-C looked for on large batches. The model is
        unchanged. ``X`` must be dense (a scipy.sparse matrix: ``X.toarray()``)."""
        if is_sparse(X):
            raise TypeError(
                "loss_and_gradient takes dense X (an array of n rows); got a scipy.sparse "
                f"{type(X).__name__}: pass X.toarray()"
            )
        return super().loss_and_gradient(X, Y, l2=l2, sample_weight=sample_weight)

    def get_flat_parameters(self) -> np.ndarray:
        """Every parameter as one new 1-D array of ``n_parameters`` values (the network's
        dtype), in scikit-learn's packing (``sklearn.neural_network``'s ``_pack(coefs_,
        intercepts_)``)::

            theta = [W_0.T.ravel(), ..., W_{L-1}.T.ravel(), b_0, ..., b_{L-1}]

        where ``W_l`` is layer l's weights (n_out, n_in) as ``get_weights`` gives them, so
        ``W_l.T`` is scikit-learn's ``coefs_[l]`` (n_in, n_out), raveled in C order."""
        return super().get_flat_parameters()

    def set_flat_parameters(self, theta: Any) -> None:
        """Replaces every parameter from a 1-D array-like of ``n_parameters`` finite reals in
        ``get_flat_parameters``' layout (converted to the network's dtype). A wrong length,
        shape or type, or a non-finite value, raises ValueError / TypeError and changes
        nothing. The training state (optimizer moments) is kept, as with ``set_weights``."""
        super().set_flat_parameters(theta)

    def _train_epoch(self, X, Y, batch_size, shuffle, l2, dropout, clip_norm, sample_weight):
        if is_sparse(X):
            parts = csr_parts(X, self.dtype)
            return self._train_epoch_csr(
                *parts, Y, batch_size, shuffle, l2, dropout, clip_norm, sample_weight
            )
        return super()._train_epoch(
            X, Y, batch_size, shuffle, l2, dropout, clip_norm, sample_weight
        )

    def _train_epoch_measured(
        self, X, Y, batch_size, shuffle, l2, dropout, clip_norm, sample_weight, accuracy_weight=None
    ):
        if is_sparse(X):
            parts = csr_parts(X, self.dtype)
            return self._train_epoch_csr_measured(
                *parts,
                Y,
                batch_size,
                shuffle,
                l2,
                dropout,
                clip_norm,
                sample_weight,
                accuracy_weight,
            )
        return super()._train_epoch_measured(
            X, Y, batch_size, shuffle, l2, dropout, clip_norm, sample_weight, accuracy_weight
        )

    # ----- training
    def train_epoch(
        self,
        X: Any,
        Y: Any,
        batch_size: int = 32,
        optimizer: Any = None,
        learning_rate: Optional[float] = None,
        shuffle: bool = True,
        seed: Optional[int] = 0,
        l2: float = 0.0,
        dropout: Union[float, Sequence[float], None] = None,
        clip_norm: Optional[float] = None,
        sample_weight: Any = None,
        class_weight: Any = None,
        **optimizer_options: Any,
    ) -> float:
        """One epoch of mini-batch training, run in Rust with the GIL released (docs/maths.md,
        "Training with mini-batches"); returns the epoch loss ``(sum over batches of L_b * n_b)
        / n``, L_b the training objective of batch b before its update (dropout, L2 included).

        The same arguments and meaning as ``ferrinet.reference.NeuralNetwork.train_epoch``:

        - ``optimizer``: a ``ferrinet.optim`` object or a name ("sgd", "rmsprop", "adam",
          "adamw") built with ``lr=learning_rate`` and ``optimizer_options``. None: "sgd" (the
          reference's default), except that a call continuing a run with neither
          ``learning_rate`` nor options continues with the run's optimizer.
        - ``seed``: seeds the generator of shuffles and dropout masks (None: random).
        - The first call (no ``training_state``) starts the run from ``optimizer`` and ``seed``;
          later calls continue it (optimizer moments, step count, generator), so N calls are
          one run of N epochs. A later call with another seed (not None) or another optimizer
          raises ValueError: call ``reset_training()`` to start a new run.
        - ``batch_size`` (int >= 1), ``shuffle`` (a new Fisher-Yates permutation each epoch),
          ``l2`` (>= 0, penalty on the weights), ``dropout`` (None, one p for every hidden
          layer, or one p per hidden layer, 0 <= p < 1), ``clip_norm`` (> 0: clip the global
          gradient norm), ``sample_weight`` (one weight >= 0 per sample), ``class_weight`` (a
          dict {class: weight} or "balanced", see ``sample_weights``).

        Everything is checked before anything changes (ValueError / TypeError; the model is
        unchanged). A batch whose loss or update is not finite raises DivergenceError; the
        network keeps the weights (and state) of the last finite batch. Ctrl-C stops between
        two batches (KeyboardInterrupt), the network consistent.
        """
        return self._run_train_epoch(
            X,
            Y,
            batch_size,
            optimizer,
            learning_rate,
            shuffle,
            seed,
            l2,
            dropout,
            clip_norm,
            sample_weight,
            class_weight,
            optimizer_options,
        )[0]

    def _fit_train_epoch(self, plan) -> Tuple[float, Optional[float]]:
        """fit's epoch: ``train_epoch`` with the accuracy counted in Rust from each batch's
        outputs as the epoch runs (no second pass over the training data)."""
        return self._run_train_epoch(
            plan.X,
            plan.Y,
            plan.batch_size,
            plan.optimizer,
            None,
            plan.shuffle,
            None,
            plan.l2,
            plan.dropout,
            plan.clip_norm,
            plan.weights,
            None,
            {},
            measure=plan.classifier,
            accuracy_weight=plan.sample_weight,
        )

    def _fit_check_data(self, X, Y, sample_weight, finite) -> None:
        """Shapes, targets and weights checked in the core without computing anything; with
        ``finite`` the input values too (in chunks, Ctrl-C looked for between them; a sparse
        matrix's structure and values in one pass over its nonzeros)."""
        if is_sparse(X):
            self._check_data_csr(*csr_parts(X, self.dtype), Y, sample_weight, finite)
            return
        self._check_data(X, Y, sample_weight, finite)

    def _fit_measure(self, X, Y, sample_weight) -> Dict[str, Any]:
        """Loss and accuracy in one blocked forward pass in the core (``_evaluate``); sparse
        inputs by ``compute_loss`` and ``predict``."""
        if is_sparse(X):
            return super()._fit_measure(X, Y, sample_weight)
        loss, accuracy = self._evaluate(X, Y, sample_weight)
        result: Dict[str, Any] = {"loss": loss}
        if accuracy is not None:
            result["accuracy"] = accuracy
        return result

    def _fit_save_run(self):
        """The core keeps a copy of its training state (``_stash_training``); the Python side
        of the run is kept here."""
        self._stash_training()
        return (self.__dict__.get("_run"), self.__dict__.get("_fit_record"))

    def _fit_restore_run(self, saved, restore: bool) -> None:
        self._unstash_training(restore)
        if restore:
            self.__dict__["_run"], self.__dict__["_fit_record"] = saved

    def _run_train_epoch(
        self,
        X,
        Y,
        batch_size,
        optimizer,
        learning_rate,
        shuffle,
        seed,
        l2,
        dropout,
        clip_norm,
        sample_weight,
        class_weight,
        optimizer_options,
        *,
        measure=False,
        accuracy_weight=None,
    ) -> Tuple[float, Optional[float]]:
        """``train_epoch``'s checks and epoch -> (loss, running accuracy or None)."""
        n = _batch_length(X, "X")
        n_hidden = len(self.sizes) - 2
        batch_size, shuffle, l2, rates, clip_norm = check_epoch_options(
            n_hidden, batch_size, shuffle, l2, dropout, clip_norm
        )
        weights = self.sample_weights(Y, sample_weight, class_weight, n=n)
        if weights is not None and not weights.sum() > 0.0:
            raise ValueError("the sample weights sum to 0; nothing to learn from")
        seed = _seed(seed)
        run = self.training_state
        if (
            optimizer is None
            and learning_rate is None
            and not optimizer_options
            and run is not None
            and run.optimizer is not None
        ):
            opt = run.optimizer
        else:
            opt = make_optimizer(
                "sgd" if optimizer is None else optimizer, learning_rate, **optimizer_options
            )
        if run is not None:
            if seed is not None and seed != run.seed:
                raise ValueError(
                    f"this network's training run was started with seed={run.seed}, got "
                    f"seed={seed!r}; call reset_training() first to start a new run"
                )
            if run.optimizer is None:
                if opt.name != run.optimizer_name:
                    raise ValueError(
                        f"this network's training run uses optimizer {run.optimizer_name!r}, "
                        f"got {opt!r}; call reset_training() first to start a new run"
                    )
                run.optimizer = opt
            elif opt.to_dict() != run.optimizer.to_dict():
                raise ValueError(
                    f"this network's training run was started with {run.optimizer!r}, got "
                    f"{opt!r}; call reset_training() first to start a new run"
                )
        dropout_rates = rates + [0.0] if any(p > 0.0 for p in rates) else []
        started = run is None
        if started:
            self._start_run(opt, seed)
        try:
            # a batch larger than the data is the whole data: the same epoch, bit for bit
            args = (X, Y, min(batch_size, n), shuffle, l2, dropout_rates, clip_norm, weights)
            if measure:
                return self._train_epoch_measured(*args, accuracy_weight)
            return self._train_epoch(*args), None
        except (ValueError, TypeError):
            # the data were refused before anything was trained: undo the run we started
            if started:
                self.reset_training()
            raise

    def sample_weights(
        self,
        Y: Any,
        sample_weight: Any = None,
        class_weight: Any = None,
        *,
        n: Optional[int] = None,
    ) -> Any:
        """The weight of each sample, ``sample_weight[k] * class_weight[class of k]``, as
        ``train_epoch`` uses them (a float64 array), or None when neither is given.

        ``class_weight``: a dict {class: weight >= 0} (classes left out weigh 1) or
        "balanced" (scikit-learn's ``n / (n_classes * count_c)`` over the classes present). The
        class of a sample is its class index (cross_entropy; the argmax of a target row, the
        first largest) or its target 0 or 1 (binary_cross_entropy with one output).
        """
        if sample_weight is None and class_weight is None:
            return None
        y = np.asarray(Y)
        if n is None:
            if y.ndim not in (1, 2):
                raise ValueError(f"expected the targets of a batch, got shape {y.shape}")
            n = y.shape[0]
        if sample_weight is not None:
            if isinstance(sample_weight, (str, bytes)):
                raise TypeError(f"sample_weight must be numbers, got {sample_weight!r}")
            w = np.asarray(sample_weight)
            if w.ndim != 1 or w.shape[0] != n:
                raise ValueError(
                    f"sample_weight: expected {n} weights (one per sample), got shape {w.shape}"
                )
            if w.dtype.kind not in "iuf":
                raise TypeError(
                    f"sample_weight must be real numbers, got an array of dtype {w.dtype}"
                )
            w = w.astype(np.float64)
            bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0.0)))
            if bad.size:
                raise ValueError(
                    f"sample_weight must be finite and >= 0, got {w[bad[0]]} at {bad[0]}"
                )
        else:
            w = np.ones(n)
        if class_weight is None:
            return w
        classes = self._classes(y, n)
        if isinstance(class_weight, str):
            if class_weight != "balanced":
                raise ValueError(f"class_weight must be a dict or 'balanced', got {class_weight!r}")
            values, counts = np.unique(classes, return_counts=True)
            n_classes = len(values)
            table = {int(c): n / (n_classes * int(count)) for c, count in zip(values, counts)}
        else:
            table = self._check_class_weight(class_weight)
        factors = np.array([table.get(int(c), 1.0) for c in classes], dtype=np.float64)
        return w * factors

    def _classes(self, y: np.ndarray, n: int) -> np.ndarray:
        m = self.sizes[-1]
        if self.loss == "cross_entropy":
            if y.ndim == 2 and y.shape == (n, m):
                return y.argmax(axis=1)
            if y.ndim == 1 and y.shape[0] == n:
                if y.dtype.kind not in "iuf" or not np.all(np.mod(y, 1) == 0):
                    raise ValueError(
                        "class_weight needs integer class indices (or rows of probabilities)"
                    )
                return y.astype(np.int64)
            raise ValueError(
                f"expected {n} class indices or targets of shape ({n}, {m}), got shape {y.shape}"
            )
        if self.loss == "binary_cross_entropy" and m == 1:
            if y.shape not in ((n,), (n, 1)):
                raise ValueError(f"expected targets of shape ({n},) or ({n}, 1), got {y.shape}")
            t = y.reshape(n).astype(np.float64)
            bad = np.flatnonzero((t != 0.0) & (t != 1.0))
            if bad.size:
                raise ValueError(
                    f"class_weight needs targets 0 or 1; sample {bad[0]} has target {t[bad[0]]}"
                )
            return t.astype(np.int64)
        raise ValueError(
            "class_weight needs loss 'cross_entropy', or 'binary_cross_entropy' with one "
            f"output; this network has loss {self.loss!r} with {m} outputs"
        )

    def _check_class_weight(self, class_weight) -> Dict[int, float]:
        if not isinstance(class_weight, dict):
            raise TypeError(
                f"class_weight must be a dict {{class: weight}} or 'balanced', got {class_weight!r}"
            )
        n_classes = self.sizes[-1] if self.loss == "cross_entropy" else 2
        table = {}
        for c, w in class_weight.items():
            if (
                isinstance(c, bool)
                or not isinstance(c, numbers.Integral)
                or not 0 <= int(c) < n_classes
            ):
                raise ValueError(
                    f"class_weight: classes are integers in [0, {n_classes}), got {c!r}"
                )
            if isinstance(w, bool) or not isinstance(w, numbers.Real):
                raise TypeError(f"class_weight[{c}] must be a real number, got {w!r}")
            w = float(w)
            if not (np.isfinite(w) and w >= 0.0):
                raise ValueError(f"class_weight[{c}] must be finite and >= 0, got {w!r}")
            table[int(c)] = w
        return table


def _from_bytes_for_pickle(cls, data: bytes) -> NeuralNetwork:
    """What pickle calls to rebuild a network (``NeuralNetwork.__reduce__``)."""
    return NeuralNetwork.from_bytes.__func__(cls, data)  # type: ignore[attr-defined]
