"""Build and call ``yardstick.c``, the plain per-sample SGD loop in C that ``bench_sgd.py``
measures ferrinet's per-sample paths against.

``build()`` compiles it with ``gcc -O3 -march=native -ffast-math`` (one shared library per
dtype, ``-DREAL=double`` and ``-DREAL=float``) in a temporary directory and loads both with
ctypes. ctypes rather than a separate program: the C loop then trains the very NumPy arrays the
other implementations start from (the same weights and samples, no file format in between), the
answer check reads the C loop's weights straight from those arrays, and one timed ctypes call
runs a whole run of steps, so the call's own cost (~1 µs) is spread over thousands of steps.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "yardstick.c")
FLAGS = ["-O3", "-march=native", "-ffast-math", "-shared", "-fPIC", "-std=c11"]
REALS = {"float64": "double", "float32": "float"}
LOSSES = {"mse": 0, "cross_entropy": 1}


class YardstickUnavailable(RuntimeError):
    """gcc is missing or failed: the message says what to install or what went wrong."""


def compiler() -> str:
    """The C compiler: $CC if set, else gcc; raises YardstickUnavailable if it is not found."""
    cc = os.environ.get("CC", "gcc")
    path = shutil.which(cc)
    if path is None:
        raise YardstickUnavailable(
            f"the C yardstick needs a C compiler: {cc!r} was not found on PATH (install gcc, "
            "e.g. `apt-get install gcc`, or set CC to one)"
        )
    return path


def build() -> Dict[str, ctypes.CDLL]:
    """{dtype: the loaded library} for float64 and float32. The temporary directory is removed
    once both are loaded (a loaded library stays mapped)."""
    cc = compiler()
    libs = {}
    with tempfile.TemporaryDirectory(prefix="ferrinet-yardstick-") as tmp:
        for dtype, real in REALS.items():
            out = os.path.join(tmp, f"yardstick_{dtype}.so")
            cmd = [cc, *FLAGS, f"-DREAL={real}", "-o", out, SOURCE, "-lm"]
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                raise YardstickUnavailable(
                    f"building the C yardstick failed ({' '.join(cmd)}):\n{result.stderr}"
                )
            lib = ctypes.CDLL(out)
            fn = lib.yardstick_train
            fn.restype = ctypes.c_int
            fn.argtypes = [
                ctypes.c_int,  # n_layers
                ctypes.c_void_p,  # sizes (int32)
                ctypes.c_void_p,  # W pointers
                ctypes.c_void_p,  # b pointers
                ctypes.c_void_p,  # X
                ctypes.c_void_p,  # Y (mse) or NULL
                ctypes.c_void_p,  # labels (cross_entropy) or NULL
                ctypes.c_int64,  # n
                ctypes.c_int64,  # epochs
                ctypes.c_double,  # lr
                ctypes.c_int,  # loss
                ctypes.c_void_p,  # epoch_losses
            ]
            libs[dtype] = lib
    return libs


class Yardstick:
    """One network's weights (copies, in the dtype, C-contiguous) trained by the C loop."""

    def __init__(
        self,
        lib: ctypes.CDLL,
        sizes: Sequence[int],
        weights: Sequence[Tuple[np.ndarray, np.ndarray]],
        loss: str,
        dtype: str,
    ):
        self.lib = lib
        self.dtype = np.dtype(dtype)
        self.sizes = np.array(sizes, dtype=np.int32)
        self.loss = LOSSES[loss]
        self.W: List[np.ndarray] = []
        self.b: List[np.ndarray] = []
        self.set_weights(weights)
        self._W_ptrs = (ctypes.c_void_p * len(self.W))(*[W.ctypes.data for W in self.W])
        self._b_ptrs = (ctypes.c_void_p * len(self.b))(*[b.ctypes.data for b in self.b])

    def set_weights(self, weights) -> None:
        if not self.W:
            self.W = [np.array(W, dtype=self.dtype, order="C") for W, _ in weights]
            self.b = [np.array(b, dtype=self.dtype) for _, b in weights]
        else:  # in place: the C side holds their addresses
            for W, b, (W0, b0) in zip(self.W, self.b, weights):
                W[...] = W0
                b[...] = b0

    def get_weights(self) -> List[Tuple[np.ndarray, np.ndarray]]:
        return [(W.copy(), b.copy()) for W, b in zip(self.W, self.b)]

    def train(self, X: np.ndarray, Y: np.ndarray, epochs: int, lr: float) -> List[float]:
        """`epochs` passes of per-sample SGD over (X, Y) in order; the mean loss per epoch.
        X must be C-contiguous in the dtype; Y rows in the dtype (mse) or int64 class indices
        (cross_entropy)."""
        if X.dtype != self.dtype or not X.flags.c_contiguous:
            raise TypeError(f"X must be a C-contiguous {self.dtype} array, got {X.dtype}")
        Yf: Optional[np.ndarray] = None
        labels: Optional[np.ndarray] = None
        if self.loss == LOSSES["cross_entropy"]:
            labels = np.ascontiguousarray(Y, dtype=np.int64)
        else:
            Yf = np.ascontiguousarray(Y, dtype=self.dtype)
        losses = np.empty(epochs, dtype=np.float64)
        rc = self.lib.yardstick_train(
            len(self.W),
            self.sizes.ctypes.data,
            ctypes.addressof(self._W_ptrs),
            ctypes.addressof(self._b_ptrs),
            X.ctypes.data,
            None if Yf is None else Yf.ctypes.data,
            None if labels is None else labels.ctypes.data,
            len(X),
            epochs,
            lr,
            self.loss,
            losses.ctypes.data,
        )
        if rc != 0:
            raise MemoryError("the C yardstick could not allocate its scratch vectors")
        return losses.tolist()
