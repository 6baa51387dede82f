"""ONNX export: ``to_onnx(net)`` writes a ferrinet network as a standard ONNX graph.

The graph computes exactly what ``net.predict`` computes, layer by layer (docs/maths.md)::

    z_l = Gemm(x_l, W_l, b_l, transB=1)  =  x_l W_l^T + b_l      W_l stored (n_out, n_in)
    a_l = f_l(z_l)                                                 x_{l+1} = a_l

with ``f`` one ONNX node: ``Relu``; ``LeakyRelu(alpha=0.01)`` (ferrinet's slope, PyTorch's
default); ``Sigmoid``; ``Tanh``; ``Softmax(axis=-1)``; identity adds no node. The input is
``"input"`` of shape ``["batch", n_inputs]``, the output ``"output"`` of shape
``["batch", n_outputs]``, both of the network's dtype (float32 -> ``tensor(float)``, float64 ->
``tensor(double)``). Parameters are initializers named ``layers.{l}.weight`` (n_out, n_in) and
``layers.{l}.bias`` (n_out,), as in PyTorch's ``nn.Linear``.

float64 and onnxruntime: its CPU provider has double kernels for Gemm, Relu, Sigmoid, Tanh,
Softmax, Mul and Max, but not for LeakyRelu (onnxruntime 1.32 runs a double LeakyRelu only at
opsets 16-18, by expanding the op's function body, and refuses it at every other opset). A
float64 network's leaky_relu is therefore written as ``Max(z, Mul(z, 0.01))``, which equals
``z if z > 0 else 0.01 * z`` for every finite z because 0 < 0.01 < 1; float32 networks use the
``LeakyRelu`` op.

The ``onnx`` package is an optional dependency (``pip install ferrinet[onnx]``); it is
imported when ``to_onnx`` is called, never by ``import ferrinet``.
"""

from __future__ import annotations

import numbers
import os
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from . import _core
from .io import write_atomic

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import onnx as _onnx

__all__ = ["DEFAULT_OPSET", "LEAKY_RELU_SLOPE", "MIN_OPSET", "to_onnx"]

#: The opset written when none is given: supported by onnxruntime >= 1.13 and every current
#: converter; the ops used here have not changed meaning since opset 13.
DEFAULT_OPSET = 17
#: The oldest opset accepted: Softmax before opset 13 flattens its input to 2-D around ``axis``
#: instead of normalising one axis.
MIN_OPSET = 13
#: leaky_relu's slope for z <= 0 (``LEAKY_SLOPE`` in rust/ferrinet-core/src/activation.rs).
LEAKY_RELU_SLOPE = 0.01

# Protocol buffers cannot serialise a message of 2 GiB or more.
_PROTOBUF_LIMIT = 2**31 - 1

PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def _import_onnx() -> Any:
    try:
        import onnx
        import onnx.checker  # noqa: F401
        import onnx.helper  # noqa: F401
        import onnx.numpy_helper  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "ferrinet.onnx.to_onnx needs the optional 'onnx' package, which is not installed: "
            "pip install ferrinet[onnx]"
        ) from exc
    return onnx


def to_onnx(
    net: _core.NeuralNetwork,
    path: Optional[PathArg] = None,
    *,
    opset: Optional[int] = None,
    include_output_activation: bool = True,
) -> "_onnx.ModelProto":
    """The ONNX model of ``net`` (checked by ``onnx.checker``); also saved to ``path`` if given.

    Parameters
    ----------
    net : ferrinet.NeuralNetwork
        Any ferrinet network, float32 or float64; it is read once (``get_weights``), under its
        lock, and not changed.
    path : str or os.PathLike, optional
        Where to save the model. Saving is atomic: the bytes go to a temporary file in the same
        directory, are flushed to disk (fsync) and then renamed over ``path`` (``os.replace``),
        so a reader sees the old file or the new one, never a partial one. The directory must
        exist.
    opset : int, optional
        The ONNX opset (default ``DEFAULT_OPSET`` = 17), from ``MIN_OPSET`` = 13 to the newest
        the installed ``onnx`` knows. The graph means the same at every opset in that range.
    include_output_activation : bool, default True
        True: ``output`` = ``net.predict(input)``. False: the last layer's activation is left
        out and ``output`` is its pre-activation z (the logits of binary_cross_entropy /
        cross_entropy networks).

    Returns
    -------
    onnx.ModelProto
        ``producer_name`` "ferrinet"; ``metadata_props`` hold ``ferrinet.sizes``,
        ``ferrinet.activations``, ``ferrinet.loss``, ``ferrinet.dtype`` and
        ``ferrinet.output_activation_included``.

    Run it with onnxruntime (float64 networks take and return float64)::

        sess = onnxruntime.InferenceSession(model.SerializeToString(),
                                            providers=["CPUExecutionProvider"])
        (out,) = sess.run(["output"], {"input": X.astype(net.dtype)})

    Raises ``ImportError`` without the ``onnx`` package, ``TypeError`` / ``ValueError`` for
    bad arguments (checked before anything is built or written), ``FileNotFoundError`` /
    ``IsADirectoryError`` for a path that cannot be written.
    """
    if not isinstance(net, _core.NeuralNetwork):
        raise TypeError(f"to_onnx exports a ferrinet.NeuralNetwork, got {_type_name(net)}")
    if not isinstance(include_output_activation, (bool, np.bool_)):
        raise TypeError(
            "include_output_activation must be True or False, got "
            f"{include_output_activation!r} ({type(include_output_activation).__name__})"
        )
    target = None if path is None else _check_path(path)
    onnx = _import_onnx()
    opset = _check_opset(opset, onnx.defs.onnx_opset_version())

    dtype = np.dtype(net.dtype)
    n_bytes = net.n_parameters * dtype.itemsize
    if n_bytes >= _PROTOBUF_LIMIT:
        raise ValueError(
            f"this network's {net.n_parameters:,} {dtype.name} parameters take {n_bytes:,} "
            "bytes; an ONNX file is a protocol buffer, limited to 2 GiB (external-data export "
            "is not supported)"
        )
    model = _build(onnx, net, dtype, opset, bool(include_output_activation))
    onnx.checker.check_model(model, full_check=True)
    if target is not None:
        write_atomic(target, model.SerializeToString())
    return model


def _type_name(obj: Any) -> str:
    cls = type(obj)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_opset(opset: Any, newest: int) -> int:
    if opset is None:
        return min(DEFAULT_OPSET, newest)
    if isinstance(opset, (bool, np.bool_)) or not isinstance(opset, numbers.Integral):
        raise TypeError(f"opset must be an int, got {opset!r} ({type(opset).__name__})")
    if not MIN_OPSET <= int(opset) <= newest:
        raise ValueError(
            f"opset must be between {MIN_OPSET} and {newest} (the newest this onnx "
            f"package knows), got {int(opset)}"
        )
    return int(opset)


def _check_path(path: Any) -> str:
    """The path as str; refuses what cannot be a file path before anything is built."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike (or None), got {type(path).__name__}")
    target = os.fsdecode(os.fspath(path))
    if target == "":
        raise ValueError("path must not be empty")
    if os.path.isdir(target):
        raise IsADirectoryError(
            f"path {target!r} is a directory; give a file name such as "
            f"{os.path.join(target, 'model.onnx')!r}"
        )
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"cannot save to {target!r}: the directory {directory!r} does not exist"
        )
    return target


# ferrinet activations that are one ONNX operator of the same name, applied element-wise
_ELEMENTWISE_OPS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "exp": "Exp"}


def _build(onnx: Any, net: Any, dtype: np.dtype, opset: int, with_output_activation: bool):
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    elem = onnx.TensorProto.FLOAT if dtype == np.float32 else onnx.TensorProto.DOUBLE
    sizes = list(net.sizes)
    activations = list(net.activations)
    weights = net.get_weights()
    nodes = []
    initializers = []
    current = "input"
    last = len(weights) - 1
    for l, ((W, b), act) in enumerate(zip(weights, activations)):
        if l == last and not with_output_activation:
            act = "identity"
        prefix = f"layers.{l}"
        w_name, b_name = f"{prefix}.weight", f"{prefix}.bias"
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(W, dtype), w_name))
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(b, dtype), b_name))
        out = "output" if l == last else f"{prefix}.a"
        z = out if act == "identity" else f"{prefix}.z"
        # Gemm: z = alpha * input @ W^T + beta * b, alpha = beta = 1 (the defaults).
        nodes.append(
            helper.make_node(
                "Gemm", [current, w_name, b_name], [z], name=f"{prefix}.gemm", transB=1
            )
        )
        if act in _ELEMENTWISE_OPS:
            op = _ELEMENTWISE_OPS[act]
            nodes.append(helper.make_node(op, [z], [out], name=f"{prefix}.{act}"))
        elif act == "leaky_relu" and dtype == np.float32:
            nodes.append(
                helper.make_node(
                    "LeakyRelu", [z], [out], name=f"{prefix}.leaky_relu", alpha=LEAKY_RELU_SLOPE
                )
            )
        elif act == "leaky_relu":
            # No double LeakyRelu kernel in onnxruntime: max(z, slope * z), exact for 0 < slope < 1.
            slope = f"{prefix}.leaky_relu.slope"
            scaled = f"{prefix}.leaky_relu.scaled"
            initializers.append(numpy_helper.from_array(np.array(LEAKY_RELU_SLOPE, dtype), slope))
            nodes.append(
                helper.make_node("Mul", [z, slope], [scaled], name=f"{prefix}.leaky_relu.mul")
            )
            nodes.append(
                helper.make_node("Max", [z, scaled], [out], name=f"{prefix}.leaky_relu.max")
            )
        elif act == "softmax":
            nodes.append(helper.make_node("Softmax", [z], [out], name=f"{prefix}.softmax", axis=-1))
        elif act != "identity":  # pragma: no cover - the core knows no other activation
            raise ValueError(f"layer {l}: no ONNX export for activation {act!r}")
        current = out

    graph = helper.make_graph(
        nodes,
        "ferrinet",
        [helper.make_tensor_value_info("input", elem, ["batch", sizes[0]])],
        [helper.make_tensor_value_info("output", elem, ["batch", sizes[-1]])],
        initializer=initializers,
        doc_string=repr(net),
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="ferrinet",
        producer_version=_core.__version__,
        doc_string=f"{net!r} exported by ferrinet.onnx.to_onnx",
    )
    # The oldest IR version that can carry this opset, so that older runtimes load the file.
    model.ir_version = helper.find_min_ir_version_for(opsets)
    helper.set_model_props(
        model,
        {
            "ferrinet.sizes": str(sizes),
            "ferrinet.activations": str(activations),
            "ferrinet.loss": str(net.loss),
            "ferrinet.dtype": dtype.name,
            "ferrinet.output_activation_included": str(with_output_activation),
        },
    )
    return model
