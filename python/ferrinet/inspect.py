"""Look inside a network: ``summary(net)`` (the architecture as a table) and ``trace(net, x, y)``
(one sample's forward and backward pass with every intermediate: the backward pass made visible,
for teaching and debugging).

``trace`` is computed in Rust by ``NeuralNetwork::trace`` (rust/ferrinet-core/src/trace.rs),
with the same pieces as ``net.gradients``, so its dL/dW and dL/db are bit for bit those of
``net.gradients(x[None], y[None])``. For layer l with input x_l (x_0 = the sample), in the
notation of docs/maths.md::

    z_l       = W_l x_l + b_l                  pre-activation            (n_out,)
    a_l       = f_l(z_l)                       activation = x_{l+1}      (n_out,)
    delta_L   = dL/dz of the output layer      mse: (2 / m) (a - t) f'(z); binary_cross_entropy:
                                               (a - t) / m; cross_entropy: a * sum(t) - t
    dL/dx_l   = W_l^T delta_l                  sent to the layer below   (n_in,)
    delta_l   = dL/dx_{l+1} * f_l'(z_l)        element-wise, for l < L
    dL/dW_l   = delta_l x_l^T                  outer product             (n_out, n_in)
    dL/db_l   = delta_l
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import numpy as np

from . import _core

__all__ = ["LayerTrace", "NeuronTrace", "Trace", "summary", "trace"]


# ------------------------------------------------------------------------------------- summary
def summary(net: Any) -> str:
    """The architecture of ``net`` as a table, one row per layer, like Keras's ``summary()`` or
    torchinfo: index, type (every ferrinet layer is fully connected, "Dense"), activation,
    input -> output shape (n = the batch), weights (n_out x n_in), biases (n_out) and
    parameters (n_out * n_in + n_out), then the totals, the dtype, the memory the parameters
    take (parameters x bytes per value) and the loss.

    Works with ``ferrinet.NeuralNetwork`` and ``ferrinet.reference.NeuralNetwork`` (float64).
    """
    title, header, rows, right_flags, footer = _summary_parts(net)
    right = {c for c, flag in enumerate(right_flags) if flag}  # right-aligned columns
    widths = [max(len(r[c]) for r in rows + [header]) for c in range(len(header))]

    def line(cells) -> str:
        return "  ".join(
            cell.rjust(w) if c in right else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(cells, widths))
        ).rstrip()

    width = sum(widths) + 2 * (len(widths) - 1)
    out = [title, "=" * width, line(header), "-" * width]
    out += [line(r) for r in rows]
    out += ["=" * width] + footer
    return "\n".join(out)


_Row = Tuple[str, str, str, str, str, str, str]


def _summary_parts(net: Any) -> Tuple[str, _Row, List[_Row], List[bool], List[str]]:
    """What ``summary`` shows, as data (also rendered as HTML by ``_repr_html_``): the title,
    the header, one row per layer, which columns are numbers (right-aligned), the totals."""
    try:
        sizes = [int(s) for s in net.sizes]
        activations = [str(a) for a in net.activations]
        loss = str(net.loss)
    except (AttributeError, TypeError):
        raise TypeError(
            "summary needs a ferrinet network (with sizes, activations and loss), got "
            f"{type(net).__module__}.{type(net).__qualname__}"
        ) from None
    dtype = np.dtype(getattr(net, "dtype", "float64"))
    rows: List[_Row] = []
    for l, (n_in, n_out, act) in enumerate(zip(sizes[:-1], sizes[1:], activations)):
        rows.append(
            (
                str(l),
                "Dense",
                act,
                f"(n, {n_in}) -> (n, {n_out})",
                f"{n_out}x{n_in}",
                f"{n_out:,}",
                f"{n_out * n_in + n_out:,}",
            )
        )
    n_weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    n_biases = sum(sizes[1:])
    total = n_weights + n_biases
    header: _Row = ("layer", "type", "activation", "input -> output", "weights", "biases", "params")
    right = [True, False, False, False, False, True, True]
    n_bytes = total * dtype.itemsize
    footer = [
        f"total params: {total:,} (weights {n_weights:,}, biases {n_biases:,})",
        f"dtype: {dtype.name} ({dtype.itemsize} bytes per value)",
        f"parameter memory: {n_bytes:,} bytes{_human(n_bytes)}",
        f"loss: {loss}",
    ]
    return repr(net), header, rows, right, footer


def _human(n_bytes: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= size:
            return f" ({n_bytes / size:.2f} {unit})"
    return ""


# --------------------------------------------------------------------------------------- trace
@dataclass(frozen=True, eq=False)  # eq=False: fields are arrays, compared by identity
class NeuronTrace:
    """Neuron ``index`` of a traced layer. ``weights``, ``input`` and ``grad_weights`` are
    read-only views into the layer's arrays (row ``index`` of W and of dL/dW); the scalars are
    entry ``index`` of z, a, delta and dL/db::

        z            = weights . input + bias
        a            = f(z)                   (softmax: entry index of the layer's softmax)
        delta        = dL/dz
        grad_weights = delta * input          dL/dW[index]
        grad_bias    = delta                  dL/db[index]
    """

    index: int
    weights: np.ndarray  # (n_inputs,)
    bias: float
    input: np.ndarray  # (n_inputs,): the layer's input, the same for every neuron
    z: float
    a: float
    delta: float
    grad_weights: np.ndarray  # (n_inputs,)
    grad_bias: float


@dataclass(frozen=True, eq=False)  # eq=False: fields are arrays, compared by identity
class LayerTrace:
    """One layer of a ``Trace``: its parameters and what the sample's passes computed there.
    Arrays are read-only, of the network's dtype; row i of ``weights`` / ``grad_weights`` is
    neuron i (``neurons`` gives per-neuron views)::

        z = weights @ input + biases           a = f(z)
        delta = dL/dz                          grad_input = weights.T @ delta = dL/d input
        grad_weights = outer(delta, input)     grad_biases = delta
    """

    index: int
    activation: str
    weights: np.ndarray  # W (n_outputs, n_inputs)
    biases: np.ndarray  # b (n_outputs,)
    input: np.ndarray  # x (n_inputs,)
    z: np.ndarray  # (n_outputs,)
    a: np.ndarray  # (n_outputs,)
    delta: np.ndarray  # dL/dz (n_outputs,)
    grad_weights: np.ndarray  # dL/dW (n_outputs, n_inputs)
    grad_biases: np.ndarray  # dL/db (n_outputs,)
    grad_input: np.ndarray  # dL/dx (n_inputs,)

    @property
    def n_inputs(self) -> int:
        return self.weights.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.weights.shape[0]

    @property
    def neurons(self) -> List[NeuronTrace]:
        """One ``NeuronTrace`` per neuron (views, no copies of the vectors)."""
        return [
            NeuronTrace(
                index=i,
                weights=self.weights[i],
                bias=float(self.biases[i]),
                input=self.input,
                z=float(self.z[i]),
                a=float(self.a[i]),
                delta=float(self.delta[i]),
                grad_weights=self.grad_weights[i],
                grad_bias=float(self.grad_biases[i]),
            )
            for i in range(self.n_outputs)
        ]


@dataclass(frozen=True, eq=False)  # eq=False: fields are arrays, compared by identity
class Trace:
    """One sample's forward and backward pass (``trace(net, x, y)``): the loss L of the sample,
    its target ``t`` as a row (a class index becomes a one-hot row), and every layer, input side
    first. ``print(trace)`` shows it as text."""

    loss: float
    loss_name: str
    dtype: str
    target: np.ndarray  # (n_outputs,)
    layers: Tuple[LayerTrace, ...]

    @property
    def input(self) -> np.ndarray:
        """The sample: the input of layer 0."""
        return self.layers[0].input

    @property
    def output(self) -> np.ndarray:
        """The network's output for the sample (``net.forward(x)``): a of the last layer."""
        return self.layers[-1].a

    @property
    def gradients(self) -> List[Tuple[np.ndarray, np.ndarray]]:
        """[(dL/dW, dL/db) per layer], as ``net.gradients(x[None], y[None])`` returns them."""
        return [(lt.grad_weights, lt.grad_biases) for lt in self.layers]

    def __str__(self) -> str:
        fmt = _formatter()
        vec = lambda v: "[" + ", ".join(fmt(x) for x in v) + "]"  # noqa: E731
        out = [
            f"trace of one sample: loss {self.loss_name} = {fmt(self.loss)}",
            f"  input  {vec(self.input)}",
            f"  output {vec(self.output)}   target {vec(self.target)}",
        ]
        for lt in self.layers:
            out.append(
                f"layer {lt.index} ({lt.activation}): {lt.n_inputs} -> {lt.n_outputs}"
                f"   input x = {vec(lt.input)}"
            )
            header = (
                "neuron",
                "w",
                "b",
                "z = w.x + b",
                "a = f(z)",
                "delta = dL/dz",
                "dL/db",
                "dL/dw",
            )
            rows = [
                (
                    str(n.index),
                    vec(n.weights),
                    fmt(n.bias),
                    fmt(n.z),
                    fmt(n.a),
                    fmt(n.delta),
                    fmt(n.grad_bias),
                    vec(n.grad_weights),
                )
                for n in lt.neurons
            ]
            widths = [max(len(r[c]) for r in rows + [header]) for c in range(len(header))]
            for r in [header] + rows:
                cells = [r[0].rjust(widths[0]), r[1].ljust(widths[1])]
                cells += [r[c].rjust(widths[c]) for c in range(2, len(r) - 1)] + [r[-1]]
                out.append("    " + "  ".join(cells))
            out.append(f"    dL/dx = W^T delta = {vec(lt.grad_input)}")
        return "\n".join(out)

    def _repr_html_(self) -> str:
        """Jupyter's rich display: one table per layer, a row per neuron."""
        from ._html import trace_html

        return trace_html(self)


def _formatter():
    # 6 significant digits: for reading; the arrays hold the exact values.
    return lambda x: f"{float(x):.6g}"


def trace(net: Any, x: Any, y: Any) -> Trace:
    """Forward and backward pass of ONE sample ``x`` (shape (n_inputs,), or (1, n_inputs))
    with target ``y``, keeping every layer's input, z, a, delta = dL/dz, dL/dW, dL/db and
    dL/dx (see the module docstring for the formulas). Computed in Rust under the network's
    lock; the network is not changed.

    ``y`` is given as for one sample of ``net.backward``: a class index or a row of m
    probabilities for cross_entropy; a row of m values otherwise (a number when m = 1). With
    x of shape (1, n_inputs), y is read as for a batch of one (``[class]``, or shape (1, m)).

    ``trace.loss`` is the sample's loss (``net.compute_loss(x[None], y[None])``), and
    ``trace.gradients`` equals ``net.gradients(x[None], y[None])`` bit for bit. Bad input
    raises ValueError / TypeError saying what was expected.
    """
    if not isinstance(net, _core.NeuralNetwork):
        raise TypeError(
            "trace needs a ferrinet.NeuralNetwork, got "
            f"{type(net).__module__}.{type(net).__qualname__}"
        )
    raw = _core._trace(net, x, y)
    layers = tuple(_layer(l, d) for l, d in enumerate(raw["layers"]))
    return Trace(
        loss=float(raw["loss"]),
        loss_name=net.loss,
        dtype=net.dtype,
        target=_frozen(raw["target"]),
        layers=layers,
    )


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _layer(index: int, d: Dict[str, Any]) -> LayerTrace:
    arrays = {k: _frozen(v) for k, v in d.items() if k != "activation"}
    return LayerTrace(index=index, activation=d["activation"], **arrays)
