"""A straightforward NumPy mini-batch MLP: the peer of ``bench_epochs.py``.

relu hidden layers, softmax output with cross_entropy (class indices), trained by mini-batch SGD
or Adam exactly as docs/maths.md part 2 writes the epoch (batches, mean-loss gradients, the
optimizer formulas in their order of operations), in float64 or float32. It is what someone
would write by hand with NumPy: one BLAS matrix product per layer and direction, elementwise
NumPy calls for the rest, every batch-sized and parameter-sized buffer allocated once (``out=``
and in-place updates), so that the time is NumPy's arithmetic, not the memory allocator.

    model = NumpyMLP(net.get_weights(), dtype=np.float64)
    model.start_training(ferrinet.optim.Adam(lr=1e-3))
    loss = model.train_epoch(X, y, batch_size=64, order=None)        # no shuffle
    loss = model.train_epoch(X, y, batch_size=64, order=np.random.default_rng(0))  # shuffled
    probs = model.predict(X)

Only the optimizer options the benchmark uses are implemented: SGD without momentum or weight
decay, Adam without weight decay or amsgrad; anything else raises ValueError.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

Weights = List[Tuple[np.ndarray, np.ndarray]]


class NumpyMLP:
    def __init__(self, weights: Sequence[Tuple[np.ndarray, np.ndarray]], dtype=np.float64):
        self.dtype = np.dtype(dtype)
        self.W = [np.array(W, dtype=self.dtype, order="C") for W, _ in weights]
        self.b = [np.array(b, dtype=self.dtype) for _, b in weights]
        self.sizes = [self.W[0].shape[1]] + [W.shape[0] for W in self.W]
        self.dW = [np.empty_like(W) for W in self.W]
        self.db = [np.empty_like(b) for b in self.b]
        self._capacity = 0
        self.optimizer = None

    # ----------------------------------------------------------------------------------------
    def get_weights(self) -> Weights:
        return [(W.copy(), b.copy()) for W, b in zip(self.W, self.b)]

    def set_weights(self, weights) -> None:
        for W, b, (W0, b0) in zip(self.W, self.b, weights):
            W[...] = W0
            b[...] = b0

    def _buffers(self, n: int) -> None:
        """Batch-sized buffers for batches of up to n rows (views [:n_b] serve smaller ones)."""
        if n <= self._capacity:
            return
        d = self.dtype
        widths = self.sizes[1:]
        self.xb = np.empty((n, self.sizes[0]), d)
        self.z = [np.empty((n, w), d) for w in widths]  # pre-activations
        self.a = [np.empty((n, w), d) for w in widths[:-1]]  # hidden activations
        self.dx = [np.empty((n, w), d) for w in widths[:-1]]  # deltas of hidden layers
        self.mask = [np.empty((n, w), bool) for w in widths[:-1]]
        self.e = np.empty((n, widths[-1]), d)  # exp, then softmax, then the output delta
        self.mx = np.empty(n, d)
        self.s = np.empty(n, d)
        self.lse = np.empty(n, d)
        self.rows = np.arange(n)
        self._capacity = n

    # ----------------------------------------------------------------------------------------
    def start_training(self, optimizer) -> None:
        """``optimizer``: a ``ferrinet.optim`` SGD or Adam; its state starts at zero."""
        name = optimizer.name
        opts = {k: v for k, v in optimizer.to_dict().items() if k != "name"}
        if name == "sgd":
            if opts["momentum"] or opts["weight_decay"]:
                raise ValueError("NumpyMLP: SGD with momentum or weight decay is not implemented")
        elif name == "adam":
            if opts["weight_decay"] or opts["amsgrad"]:
                raise ValueError("NumpyMLP: Adam with weight decay or amsgrad is not implemented")
            self.m = [np.zeros_like(p) for p in self.W + self.b]
            self.v = [np.zeros_like(p) for p in self.W + self.b]
            self.tmp = [np.empty_like(p) for p in self.W + self.b]
            self.beta1, self.beta2, self.eps = opts["beta1"], opts["beta2"], opts["eps"]
            self.one_m_beta1 = 1.0 - self.beta1  # "(1 - x)" once per step as a float
            self.one_m_beta2 = 1.0 - self.beta2
        else:
            raise ValueError(f"NumpyMLP: optimizer {name!r} is not implemented")
        self.optimizer = name
        self.lr = opts["lr"]
        self.t = 0

    def train_epoch(
        self,
        X: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        order: Union[None, np.ndarray, np.random.Generator] = None,
    ) -> float:
        """One epoch; returns (sum over batches of L_b * n_b) / n.

        ``order``: None for 0..n-1 (no shuffle), a permutation to follow, or a NumPy Generator
        whose ``permutation(n)`` shuffles (its own permutation, not ferrinet's SplitMix64 one).
        X must already have the model's dtype (a conversion here would be timed)."""
        if self.optimizer is None:
            raise RuntimeError("start_training first")
        n = len(X)
        if isinstance(order, np.random.Generator):
            order = order.permutation(n)
        self._buffers(min(batch_size, n))
        total = 0.0
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            nb = stop - start
            if order is None:
                xb, yb = X[start:stop], y[start:stop]
            else:
                idx = order[start:stop]
                xb = np.take(X, idx, axis=0, out=self.xb[:nb])
                yb = y[idx]
            total += self._step(xb, yb, nb) * nb
        return total / n

    # ----------------------------------------------------------------------------------------
    def _forward(self, xb: np.ndarray, nb: int) -> List[np.ndarray]:
        """Fills z (and a) for the batch; returns every layer's input."""
        inputs = [xb]
        a = xb
        last = len(self.W) - 1
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            z = np.matmul(a, W.T, out=self.z[i][:nb])
            z += b
            if i < last:
                a = np.maximum(z, 0.0, out=self.a[i][:nb])
                inputs.append(a)
        return inputs

    def _step(self, xb: np.ndarray, yb: np.ndarray, nb: int) -> float:
        inputs = self._forward(xb, nb)
        last = len(self.W) - 1
        # softmax + cross_entropy: the loss, and delta = (a - t) / n of the output layer
        z = self.z[last][:nb]
        rows = self.rows[:nb]
        mx = np.max(z, axis=1, out=self.mx[:nb])
        e = np.subtract(z, mx[:, None], out=self.e[:nb])
        np.exp(e, out=e)
        s = np.sum(e, axis=1, out=self.s[:nb])
        lse = np.log(s, out=self.lse[:nb])
        lse += mx
        loss = float(np.sum(lse - z[rows, yb])) / nb
        e /= s[:, None]
        e[rows, yb] -= 1.0
        e *= 1.0 / nb
        # backward: every gradient from the forward pass's weights, then the update
        delta = e
        for i in range(last, -1, -1):
            np.matmul(delta.T, inputs[i], out=self.dW[i])
            np.sum(delta, axis=0, out=self.db[i])
            if i > 0:
                dx = np.matmul(delta, self.W[i], out=self.dx[i - 1][:nb])
                mask = np.greater(self.z[i - 1][:nb], 0.0, out=self.mask[i - 1][:nb])
                delta = np.multiply(dx, mask, out=dx)
        self._update()
        return loss

    def _update(self) -> None:
        params = self.W + self.b
        grads = self.dW + self.db
        lr = self.lr
        if self.optimizer == "sgd":
            for p, g in zip(params, grads):
                g *= lr  # p - (lr * g): the same two roundings
                p -= g
            return
        self.t += 1
        bc1 = 1.0 - self.beta1**self.t
        bc2 = 1.0 - self.beta2**self.t
        step_size = lr / bc1  # docs/maths.md's arrangement, as PyTorch's
        inv_sqrt_bc2 = 1.0 / math.sqrt(bc2)
        for p, g, m, v, tmp in zip(params, grads, self.m, self.v, self.tmp):
            m *= self.beta1  # m = beta1 * m + (1 - beta1) * g
            m += np.multiply(g, self.one_m_beta1, out=tmp)
            v *= self.beta2  # v = beta2 * v + (1 - beta2) * (g * g)
            np.multiply(g, g, out=tmp)
            tmp *= self.one_m_beta2
            v += tmp
            np.sqrt(v, out=tmp)  # sqrt(v) * (1 / sqrt(bc2)) + eps
            tmp *= inv_sqrt_bc2
            tmp += self.eps
            np.multiply(m, step_size, out=g)  # (step_size * m) / (...)
            g /= tmp
            p -= g

    # ----------------------------------------------------------------------------------------
    def predict(self, X: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Softmax probabilities (n, n_out), as ferrinet's ``predict`` for cross_entropy."""
        a = X
        last = len(self.W) - 1
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            z = np.matmul(a, W.T, out=out if i == last else None)
            z += b
            if i < last:
                a = np.maximum(z, 0.0, out=z)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z
