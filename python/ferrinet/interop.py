"""Conversions between ferrinet networks and scikit-learn's multi-layer perceptrons.

``from_sklearn(model)`` builds a ``ferrinet.NeuralNetwork`` computing what a fitted
``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` computes (or copies the network of a
``ferrinet.sklearn`` estimator); ``to_sklearn(net)`` goes the other way. Both only move weights:
scikit-learn stores layer i as ``coefs_[i]`` of shape (n_in, n_out) and ``intercepts_[i]``,
ferrinet as ``W`` of shape (n_out, n_in) (row j = neuron j) and ``b``, so ``W = coefs_[i].T``.

The forward passes are the same formulas (``z = a W^T + b``, then the activation; softmax
subtracts the row maximum in both), so predictions agree to rounding: the tests hold
``net.predict(X)`` to scikit-learn's ``predict_proba`` / ``predict`` within 1e-12 in float64.

Which output corresponds to which scikit-learn layout:

=========================  ===================  ===========================================
scikit-learn               ferrinet             ``net.predict(X)`` equals
=========================  ===================  ===========================================
binary classifier          sigmoid, binary_ce   ``predict_proba(X)[:, 1:]`` (one column)
multiclass classifier      softmax, cross_ent.  ``predict_proba(X)``
multilabel classifier      sigmoid, binary_ce   ``predict_proba(X)``
regressor (squared_error)  identity, mse        ``predict(X).reshape(n, -1)``
regressor (poisson)        exp, poisson         ``predict(X).reshape(n, -1)``
=========================  ===================  ===========================================

Importing this module does not import scikit-learn; ``to_sklearn`` does (it needs
scikit-learn >= 1.6, ``pip install ferrinet[sklearn]``).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .network import NeuralNetwork

__all__ = ["from_sklearn", "to_sklearn"]

# scikit-learn's hidden activation names -> ferrinet's, and back
_TO_FERRINET = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_TO_SKLEARN = {
    "identity": "identity",
    "linear": "identity",
    "sigmoid": "logistic",
    "tanh": "tanh",
    "relu": "relu",
}
# scikit-learn's out_activation_ -> (ferrinet output activation, loss)
_OUTPUTS = {
    "softmax": ("softmax", "cross_entropy"),
    "logistic": ("sigmoid", "binary_cross_entropy"),
    "identity": ("identity", "mse"),
    "exp": ("exp", "poisson"),
}


def _not_fitted(message):
    """sklearn's NotFittedError (a ValueError) when scikit-learn is importable, else ValueError."""
    try:
        from sklearn.exceptions import NotFittedError
    except ImportError:  # pragma: no cover - scikit-learn missing
        return ValueError(message)
    return NotFittedError(message)


def _is_ferrinet_estimator(model):
    # without importing anything: if ferrinet.sklearn is not imported, model is not one of its
    mod = sys.modules.get("ferrinet.sklearn")
    return mod is not None and isinstance(model, mod._BaseMLP)


def _is_sklearn_mlp(model):
    mod = sys.modules.get("sklearn.neural_network")
    return mod is not None and isinstance(model, (mod.MLPClassifier, mod.MLPRegressor))


def from_sklearn(model: Any, dtype: Any = None) -> NeuralNetwork:
    """A ``ferrinet.NeuralNetwork`` with the weights of a fitted scikit-learn MLP.

    ``model``: a fitted ``sklearn.neural_network.MLPClassifier`` or ``MLPRegressor`` (any
    solver; ``activation`` identity / logistic / tanh / relu; binary, multiclass or multilabel
    classification, or squared-error or Poisson regression), or a fitted ``ferrinet.sklearn`` estimator
    (whose ``network_`` is copied). ``dtype``: "float64" / "float32"; None keeps the dtype of
    ``coefs_``.

    Raises TypeError for anything else, ValueError (scikit-learn's ``NotFittedError``) for an
    unfitted model, ValueError for what ferrinet cannot compute (an output activation it does
    not have) or inconsistent weights.
    """
    if _is_ferrinet_estimator(model):
        if not hasattr(model, "network_"):
            raise _not_fitted(
                f"this {type(model).__name__} is not fitted yet; call fit before from_sklearn"
            )
        net = model.network_.copy()
        if dtype is not None and np.dtype(dtype).name != net.dtype:
            return _build(
                net.sizes,
                net.activations[:-1],
                net.activations[-1],
                net.loss,
                [(W, b) for W, b in net.get_weights()],
                dtype,
            )
        return net
    name = type(model).__name__
    module = type(model).__module__
    if not _is_sklearn_mlp(model):
        raise TypeError(
            "from_sklearn expects a fitted sklearn.neural_network.MLPClassifier or MLPRegressor "
            f"(or a ferrinet.sklearn estimator), got {module}.{name}"
        )
    if not hasattr(model, "coefs_"):
        raise _not_fitted(f"this {name} is not fitted yet; call fit before from_sklearn")
    if model.activation not in _TO_FERRINET:
        raise ValueError(
            f"unsupported hidden activation {model.activation!r}; expected one of "
            f"{sorted(_TO_FERRINET)}"
        )
    out = model.out_activation_
    if out not in _OUTPUTS:
        raise ValueError(
            f"unsupported output activation out_activation_={out!r}; ferrinet computes "
            f"{', '.join(sorted(_OUTPUTS))} outputs"
        )
    coefs, intercepts = list(model.coefs_), list(model.intercepts_)
    if len(coefs) != len(intercepts) or not coefs:
        raise ValueError(
            f"inconsistent model: {len(coefs)} coefs_ and {len(intercepts)} intercepts_"
        )
    sizes = [int(np.shape(coefs[0])[0])]
    for i, (c, b) in enumerate(zip(coefs, intercepts)):
        c, b = np.asarray(c), np.asarray(b)
        if c.ndim != 2 or c.shape[0] != sizes[-1] or b.shape != (c.shape[1],):
            raise ValueError(
                f"inconsistent model: coefs_[{i}] has shape {c.shape} and intercepts_[{i}] "
                f"{b.shape}; expected ({sizes[-1]}, k) and (k,)"
            )
        sizes.append(int(c.shape[1]))
    n_hidden = len(sizes) - 2
    output_activation, loss = _OUTPUTS[out]
    if dtype is None:
        dtype = "float32" if np.asarray(coefs[0]).dtype == np.float32 else "float64"
    weights = [(np.asarray(c).T, np.asarray(b)) for c, b in zip(coefs, intercepts)]
    return _build(
        sizes, [_TO_FERRINET[model.activation]] * n_hidden, output_activation, loss, weights, dtype
    )


def _build(sizes, hidden, output_activation, loss, weights, dtype):
    net = NeuralNetwork(
        sizes,
        activation=list(hidden),
        output_activation=output_activation,
        loss=loss,
        seed=0,
        dtype=dtype,
    )
    net.set_weights(weights)
    return net


def _network_and_classes(net, classes):
    """to_sklearn's network: ``net`` itself, or a fitted ferrinet.sklearn estimator's network
    (and its ``classes_`` when ``classes`` is None). TypeError for anything else."""
    if _is_ferrinet_estimator(net):
        if not hasattr(net, "network_"):
            raise _not_fitted(
                f"this {type(net).__name__} is not fitted yet; call fit before to_sklearn"
            )
        if classes is None and hasattr(net, "classes_"):
            classes = net.classes_
        net = net.network_
    if not isinstance(net, NeuralNetwork):
        raise TypeError(
            f"to_sklearn expects a ferrinet.NeuralNetwork or a fitted ferrinet.sklearn "
            f"estimator, got {type(net).__module__}.{type(net).__name__}"
        )
    return net, classes


def _sklearn_hidden_activation(net):
    """scikit-learn's name of the one activation of ``net``'s hidden layers ("relu", its
    default, without hidden layers); ValueError when scikit-learn cannot represent them."""
    hidden = net.activations[:-1]
    if len(set(hidden)) > 1:
        raise ValueError(
            f"scikit-learn's MLPs have one hidden activation for every layer; this network has "
            f"{hidden}"
        )
    if hidden and hidden[0] not in _TO_SKLEARN:
        raise ValueError(
            f"scikit-learn has no hidden activation {hidden[0]!r}; it has identity, logistic "
            "(sigmoid), tanh and relu"
        )
    return _TO_SKLEARN[hidden[0]] if hidden else "relu"


def to_sklearn(net: Any, classes: Any = None) -> Any:
    """A fitted scikit-learn MLP computing what ``net`` computes (the inverse of
    ``from_sklearn``); for prediction (``predict``, ``predict_proba``, ``score``), not for
    continuing training (no optimizer state is carried over).

    ``net``: a ``ferrinet.NeuralNetwork`` (or a fitted ``ferrinet.sklearn`` estimator, whose
    network and ``classes_`` are used) whose hidden layers all have the same activation among
    identity / sigmoid / tanh / relu, with:

    - identity output (mse): an ``MLPRegressor``; exp output (poisson): an
      ``MLPRegressor(loss="poisson")``;
    - softmax output (cross_entropy), m >= 3 outputs: a multiclass ``MLPClassifier``;
      m = 2: a binary one, the output layer rewritten as one logistic unit with weights
      ``W[1] - W[0]`` (``softmax(z)[1] = sigmoid(z1 - z0)``, equal to rounding);
    - sigmoid output (binary_cross_entropy): binary (m = 1) or multilabel (m > 1).

    ``classes``: the labels of the outputs for a classifier (default ``0..k-1``).
    Raises TypeError for anything but a network, ValueError for what scikit-learn cannot
    represent (leaky_relu, per-layer activations, another output/loss pairing).
    """
    try:
        from sklearn.neural_network import MLPClassifier, MLPRegressor
        from sklearn.preprocessing import LabelBinarizer
    except ImportError as err:
        raise ImportError(
            "to_sklearn needs scikit-learn >= 1.6: pip install ferrinet[sklearn]"
        ) from err

    net, classes = _network_and_classes(net, classes)
    activation = _sklearn_hidden_activation(net)
    out = net.activations[-1]
    weights = net.get_weights()
    m = net.sizes[-1]
    pairing = (out, net.loss)
    if pairing in (("identity", "mse"), ("exp", "poisson")):
        model = MLPRegressor(
            loss="squared_error" if out == "identity" else "poisson",
            hidden_layer_sizes=tuple(net.sizes[1:-1]),
            activation=activation,
        )
        out_activation, n_outputs, binarizer = out, m, None
        if classes is not None:
            raise ValueError(
                f"classes= is for classifiers; this network is a regressor ({net.loss})"
            )
    elif pairing in (("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy")):
        model = MLPClassifier(hidden_layer_sizes=tuple(net.sizes[1:-1]), activation=activation)
        if out == "softmax" and m == 2:
            W, b = weights[-1]
            weights[-1] = ((W[1] - W[0])[None, :], np.array([b[1] - b[0]], dtype=b.dtype))
            out_activation, n_outputs = "logistic", 1
        else:
            out_activation = "softmax" if out == "softmax" else "logistic"
            n_outputs = m
        k = 2 if (out == "sigmoid" and m == 1) else m
        labels = np.arange(k) if classes is None else np.asarray(classes)
        if labels.ndim != 1 or len(labels) != k or len(np.unique(labels)) != k:
            raise ValueError(
                f"classes: expected {k} distinct labels (one per class of this network), got "
                f"{labels!r}"
            )
        binarizer = LabelBinarizer()
        if out == "sigmoid" and m > 1:  # multilabel: an indicator matrix
            binarizer.fit(np.eye(m, dtype=int))
            if classes is not None and not np.array_equal(labels, np.arange(m)):
                raise ValueError("classes= cannot rename the labels of a multilabel network")
        else:
            binarizer.fit(labels)
    else:
        raise ValueError(
            f"scikit-learn has no MLP with output activation {out!r} and loss {net.loss!r}; "
            "it has identity + squared error, exp + Poisson deviance, softmax + log-loss and "
            "logistic + log-loss"
        )
    model.coefs_ = [np.ascontiguousarray(W.T) for W, _ in weights]
    model.intercepts_ = [b.copy() for _, b in weights]
    model.n_layers_ = len(net.sizes)
    model.n_outputs_ = n_outputs
    model.out_activation_ = out_activation
    model.n_features_in_ = net.sizes[0]
    model.n_iter_ = 0
    model.t_ = 0
    if binarizer is not None:
        model._label_binarizer = binarizer
        model.classes_ = binarizer.classes_
    return model
