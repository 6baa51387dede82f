"""ferrinet's pure-Python reference: the maths of ``docs/maths.md`` in lists and floats.

This module is for reading. It has the same classes and method names as the Rust-backed
``ferrinet.NeuralNetwork`` (``Neuron``, ``Layer``, ``NeuralNetwork``), it never calls the Rust
code, it computes its own derivatives, and it does not use numpy (an ndarray given as input is
turned into lists with ``.tolist()`` at the boundary). It follows ``docs/maths.md`` operation by
operation, in the same order, so that the Rust core can be checked against it bit for bit.

Names (the glossary of docs/maths.md)::

    n      samples in a batch             m  outputs of the last layer
    x      a layer's input    (n, n_in)   row k = sample k
    W      a layer's weights  (n_out, n_in), row i IS neuron i's weights
    b      a layer's biases   (n_out,)
    z      pre-activation     (n, n_out)
    a      activation         (n, n_out)  the layer's output
    t      targets            (n, m)      class indices are expanded to one-hot rows
    delta  dL/dz of a layer   (n, n_out)
    dW db  gradients of the mean loss, same shapes as W and b

At the end, ``article_backward`` keeps the blog post's backward pass (wrong on purpose, with its
errata numbered as in ``article-errata.md``) so that tests can show what goes wrong with it.
"""

from __future__ import annotations

import copy as _copy
import math
import operator
import secrets

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "Layer",
    "NeuralNetwork",
    "Neuron",
    "SplitMix64",
    "article_backward",
    "article_gradients",
    "init_limit",
]


def _sum(terms):
    """Sum from 0.0, left to right: ``s = 0.0``, then ``s += term`` for each term in order.

    Not the builtin ``sum``: since Python 3.12 it adds floats with compensated (Neumaier)
    summation, which does not give the bits of the Rust core's plain loop.
    """
    s = 0.0
    for term in terms:
        s += term
    return s


# --------------------------------------------------------------------------------------------
# Seeded initialisation
# --------------------------------------------------------------------------------------------
class SplitMix64:
    """SplitMix64 (Steele, Lea & Flood 2014), exactly as Vigna's ``splitmix64.c``.

    All arithmetic is modulo 2**64::

        state += 0x9E3779B97F4A7C15; z = state
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB
        return z ^ (z >> 31)

    ``uniform()`` is ``(next_u64() >> 11) * 2**-53``, a double in [0, 1).
    """

    _MASK = (1 << 64) - 1

    def __init__(self, seed: int):
        seed = operator.index(seed)
        if not 0 <= seed <= self._MASK:
            raise ValueError(f"seed must be in [0, 2**64), got {seed}")
        self.state = seed

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & self._MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self._MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self._MASK
        return z ^ (z >> 31)

    def uniform(self) -> float:
        # a 53-bit integer times 2**-53: both conversions are exact
        return (self.next_u64() >> 11) * 2.0**-53


def init_limit(activation: str, n_inputs: int, n_outputs: int) -> float:
    """Half-width of the uniform distribution a layer's weights are drawn from.

    relu, leaky_relu: He-uniform, ``sqrt(6 / n_in)`` (He et al. 2015, "Delving Deep into
    Rectifiers"; PyTorch ``kaiming_uniform_`` with gain sqrt 2). Every other activation:
    Glorot-uniform, ``sqrt(6 / (n_in + n_out))`` (Glorot & Bengio 2010, "Understanding the
    difficulty of training deep feedforward neural networks"; PyTorch ``xavier_uniform_``, gain 1).
    The choice follows the layer's OWN activation.
    """
    if activation in ("relu", "leaky_relu"):
        return math.sqrt(6.0 / n_inputs)
    return math.sqrt(6.0 / (n_inputs + n_outputs))


# --------------------------------------------------------------------------------------------
# Activations: f and f' side by side. f' takes the cached z and a: f'(z, a).
# --------------------------------------------------------------------------------------------
def identity(z):
    return z


def identity_prime(z, a):
    return 1.0


def relu(z):
    return max(0.0, z)  # z if z > 0 else 0.0 (also for -0.0 and NaN)


def relu_prime(z, a):
    return 1.0 if z > 0.0 else 0.0  # 0 at z = 0, as PyTorch


def leaky_relu(z):
    return z if z > 0.0 else 0.01 * z


def leaky_relu_prime(z, a):
    return 1.0 if z > 0.0 else 0.01


def sigmoid(z):
    # two branches so that exp never overflows
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def sigmoid_prime(z, a):
    return a * (1.0 - a)


def tanh(z):
    return math.tanh(z)


def tanh_prime(z, a):
    return 1.0 - a * a


def softmax(z_row):
    """Softmax of one row (output layer only): subtract the max, exponentiate, normalise."""
    mx = max(z_row)
    e = [math.exp(v - mx) for v in z_row]
    s = _sum(e)
    return [e_i / s for e_i in e]


# name -> (f, f'). Softmax works on a whole row, and its derivative is folded into
# cross_entropy's delta (a - t), so it has no f'.
ACTIVATIONS = {
    "identity": (identity, identity_prime),
    "relu": (relu, relu_prime),
    "leaky_relu": (leaky_relu, leaky_relu_prime),
    "sigmoid": (sigmoid, sigmoid_prime),
    "tanh": (tanh, tanh_prime),
    "softmax": (softmax, None),
}
_ALIASES = {"linear": "identity"}


def activate(name, z_row):
    """The activation of one row of pre-activations."""
    if name == "softmax":
        return softmax(z_row)
    f = ACTIVATIONS[name][0]
    return [f(v) for v in z_row]


# --------------------------------------------------------------------------------------------
# Losses (mean reduction, as PyTorch): the value L and the seed delta = dL/dz side by side.
# Every function takes the output layer's z, a (n, m) and the targets t (n, m); the delta
# functions also take f', the derivative of the output activation. The seed carries the
# 1/(n*m) or 1/n of the mean, the factor the article dropped (erratum 7).
# --------------------------------------------------------------------------------------------
def mse(z, a, t):
    """PyTorch ``MSELoss``: L = sum over k, then i, of (a - t)**2, divided by n*m."""
    n, m = len(a), len(a[0])
    total = 0.0
    for k in range(n):
        for i in range(m):
            d = a[k][i] - t[k][i]
            total += d * d
    return total / (n * m)


def mse_delta(z, a, t, f_prime):
    """dL/dz = (2/(n*m)) * (a - t) * f'(z)."""
    n, m = len(a), len(a[0])
    c = 2.0 / (n * m)
    return [
        [(c * (a[k][i] - t[k][i])) * f_prime(z[k][i], a[k][i]) for i in range(m)]
        for k in range(n)
    ]


def bce_with_logits(z, t):
    """One term of PyTorch ``BCEWithLogitsLoss``, stable for any logit z:
    ``max(z, 0) - z*t + log1p(exp(-|z|))``  (= -t log(sigmoid z) - (1-t) log(1 - sigmoid z))."""
    return (max(0.0, z) - z * t) + math.log1p(math.exp(-abs(z)))


def binary_cross_entropy(z, a, t):
    """PyTorch ``BCEWithLogitsLoss`` on the logits z: mean over n*m of ``bce_with_logits``."""
    n, m = len(z), len(z[0])
    total = 0.0
    for k in range(n):
        for i in range(m):
            total += bce_with_logits(z[k][i], t[k][i])
    return total / (n * m)


def binary_cross_entropy_delta(z, a, t, f_prime):
    """dL/dz = (1/(n*m)) * (sigmoid(z) - t): the sigmoid's derivative cancels."""
    n, m = len(a), len(a[0])
    c = 1.0 / (n * m)
    return [[c * (a[k][i] - t[k][i]) for i in range(m)] for k in range(n)]


def cross_entropy(z, a, t):
    """PyTorch ``CrossEntropyLoss`` on the logits z (softmax output), mean over the n rows.

    Per row: ``lse = max(z) + log(sum exp(z - max(z)))`` (log-sum-exp, stable), and
    ``l_k = sum over i with t_i != 0 of t_i * (lse - z_i)``, i.e. ``-sum t_i log(softmax(z)_i)``.
    """
    n, m = len(z), len(z[0])
    total = 0.0
    for k in range(n):
        mx = max(z[k])
        s = _sum(math.exp(z[k][i] - mx) for i in range(m))
        lse = mx + math.log(s)
        l_k = _sum(t[k][i] * (lse - z[k][i]) for i in range(m) if t[k][i] != 0.0)
        total += l_k
    return total / n


def cross_entropy_delta(z, a, t, f_prime):
    """dL/dz = (1/n) * (softmax(z) * T_k - t), with T_k = sum of row k's targets
    (1 for class indices and one-hot rows, so then simply (a - t)/n)."""
    n, m = len(a), len(a[0])
    c = 1.0 / n
    delta = []
    for k in range(n):
        T_k = _sum(t[k])
        delta.append([c * (a[k][i] * T_k - t[k][i]) for i in range(m)])
    return delta


LOSSES = {
    "mse": (mse, mse_delta),
    "binary_cross_entropy": (binary_cross_entropy, binary_cross_entropy_delta),
    "cross_entropy": (cross_entropy, cross_entropy_delta),
}
_DEFAULT_OUTPUT = {
    "mse": "identity",
    "binary_cross_entropy": "sigmoid",
    "cross_entropy": "softmax",
}


# --------------------------------------------------------------------------------------------
# Neuron, Layer, NeuralNetwork: the article's vocabulary
# --------------------------------------------------------------------------------------------
class Neuron:
    """One neuron: ``weights`` (n_in floats) and a ``bias``."""

    def __init__(self, weights, bias=0.0):
        self.weights = [float(w) for w in weights]
        self.bias = float(bias)

    def forward(self, inputs):
        """Pre-activation ``z = (sum from 0.0 of w_j * x_j) + bias``; no activation here."""
        # the article's zip truncated silently here (erratum 10)
        if len(inputs) != len(self.weights):
            raise ValueError(f"expected {len(self.weights)} inputs, got {len(inputs)}")
        s = 0.0
        for w, x in zip(self.weights, inputs):
            s += w * x
        return s + self.bias

    def __repr__(self):
        return f"Neuron(weights={self.weights!r}, bias={self.bias!r})"


class Layer:
    """A dense layer: ``neurons[i]`` is row i of W (n_out, n_in) and b[i].

    Weights are drawn at construction from ``rng`` (a ``SplitMix64``), row-major:
    ``W[i][j] = limit * (2 * uniform() - 1)`` with ``limit = init_limit(...)``; biases are 0.0.
    """

    def __init__(self, n_inputs: int, n_outputs: int, activation: str, rng: SplitMix64):
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.activation = activation
        limit = init_limit(activation, n_inputs, n_outputs)
        self.neurons = []
        for _ in range(n_outputs):
            weights = [limit * (2.0 * rng.uniform() - 1.0) for _ in range(n_inputs)]
            self.neurons.append(Neuron(weights, 0.0))

    @property
    def weights(self):
        """W as a list of rows (copies), (n_out, n_in)."""
        return [list(neuron.weights) for neuron in self.neurons]

    @property
    def biases(self):
        """b as a list (a copy), (n_out,)."""
        return [neuron.bias for neuron in self.neurons]

    def forward(self, x):
        """x (n, n_in) -> (z, a), both (n, n_out)."""
        z = [[neuron.forward(row) for neuron in self.neurons] for row in x]
        a = [activate(self.activation, z_row) for z_row in z]
        return z, a

    def backward(self, x, delta, need_dx=True):
        """Gradients from the forward pass's input x (n, n_in) and delta = dL/dz (n, n_out)::

        dW[i][j] = sum over k of delta[k][i] * x[k][j]
        db[i]    = sum over k of delta[k][i]
        dx[k][j] = sum over i of delta[k][i] * W[i][j]     (None unless need_dx)
        """
        n = len(x)
        dW = [
            [
                _sum(delta[k][i] * x[k][j] for k in range(n))
                for j in range(self.n_inputs)
            ]
            for i in range(self.n_outputs)
        ]
        db = [_sum(delta[k][i] for k in range(n)) for i in range(self.n_outputs)]
        dx = None
        if need_dx:
            W = [neuron.weights for neuron in self.neurons]
            dx = [
                [
                    _sum(delta[k][i] * W[i][j] for i in range(self.n_outputs))
                    for j in range(self.n_inputs)
                ]
                for k in range(n)
            ]
        return dW, db, dx

    def __repr__(self):
        return f"Layer(n_inputs={self.n_inputs}, n_outputs={self.n_outputs}, activation={self.activation!r})"


class NeuralNetwork:
    """A multilayer perceptron trained by SGD, following docs/maths.md.

    ``sizes``: widths, input first, e.g. ``[2, 8, 1]``. ``activation``: one name for every hidden
    layer, or a list with one name per hidden layer. ``output_activation``: None picks the one
    that goes with the loss (mse: identity, binary_cross_entropy: sigmoid, cross_entropy:
    softmax). ``loss``: mse (PyTorch MSELoss), binary_cross_entropy (BCEWithLogitsLoss),
    cross_entropy (CrossEntropyLoss). ``seed``: int in [0, 2**64), None for a random one.

    Inputs are a sample (a list of n_in floats) or a batch (a list of rows). Targets: for mse
    and binary_cross_entropy the shape of the output (a 1-D Y with a batch is a column when
    m == 1); for cross_entropy class indices (an int per sample) or rows of probabilities.
    """

    def __init__(
        self, sizes, activation="relu", output_activation=None, loss="mse", seed=0
    ):
        sizes = _check_sizes(sizes)
        loss = _check_name(loss, LOSSES, "loss")
        n_hidden = len(sizes) - 2
        if isinstance(activation, str):
            hidden = [activation] * n_hidden
        else:
            hidden = list(activation)
            if len(hidden) != n_hidden:
                raise ValueError(
                    f"expected {n_hidden} hidden activations (one per hidden layer), got {len(hidden)}"
                )
        hidden = [_check_name(name, ACTIVATIONS, "activation") for name in hidden]
        if "softmax" in hidden:
            raise ValueError("softmax is only allowed as the output activation")
        if output_activation is None:
            output = _DEFAULT_OUTPUT[loss]
        else:
            output = _check_name(output_activation, ACTIVATIONS, "output_activation")
        _check_output_for_loss(output, loss)
        if seed is None:
            seed = secrets.randbits(64)
        # one generator per network, seeded once, drawn from layer by layer
        rng = SplitMix64(seed)

        self._seed = operator.index(seed)
        self._loss = loss
        self._layers = [
            Layer(n_in, n_out, act, rng)
            for n_in, n_out, act in zip(sizes[:-1], sizes[1:], hidden + [output])
        ]

    # ----- description
    @property
    def sizes(self):
        return [self._layers[0].n_inputs] + [layer.n_outputs for layer in self._layers]

    @property
    def layers(self):
        return self._layers

    @property
    def loss(self):
        return self._loss

    @property
    def activations(self):
        """One resolved name per layer, the output layer's last."""
        return [layer.activation for layer in self._layers]

    @property
    def seed(self):
        """The seed the weights were drawn with (the random one, when None was given)."""
        return self._seed

    @property
    def n_parameters(self):
        return sum(layer.n_outputs * (layer.n_inputs + 1) for layer in self._layers)

    def __repr__(self):
        return f"NeuralNetwork(sizes={self.sizes}, activations={self.activations}, loss={self._loss!r})"

    # ----- forward
    def _forward(self, x):
        """Forward pass on a batch x (n, n_in), caching (x, z, a) for every layer."""
        cache = []
        for layer in self._layers:
            z, a = layer.forward(x)
            cache.append((x, z, a))
            x = a
        return cache

    def forward(self, x):
        """A sample (n_in,) -> its outputs (m,); a batch (n, n_in) -> (n, m)."""
        rows, single = self._inputs(x)
        a = self._forward(rows)[-1][2]
        return a[0] if single else a

    def predict(self, X):
        """Forward pass on a batch (n, n_in) -> (n, m)."""
        rows, single = self._inputs(X)
        if single:
            raise ValueError(
                f"predict takes a batch of shape (n, {self.sizes[0]}); use forward for one sample"
            )
        return self._forward(rows)[-1][2]

    # ----- loss and gradients
    def compute_loss(self, X, Y) -> float:
        """The mean loss L of the targets Y for the inputs X (a sample or a batch)."""
        x, t = self._data(X, Y)
        _, z, a = self._forward(x)[-1]
        return LOSSES[self._loss][0](z, a, t)

    def _loss_and_gradients(self, x, t):
        """L and [(dW, db)] per layer, by one forward pass and the chain rule (docs/maths.md)."""
        cache = self._forward(x)
        _, z, a = cache[-1]
        loss_value, loss_delta = LOSSES[self._loss]
        L = loss_value(z, a, t)
        delta = loss_delta(z, a, t, ACTIVATIONS[self._layers[-1].activation][1])
        gradients = [None] * len(self._layers)
        for index in reversed(range(len(self._layers))):
            layer = self._layers[index]
            x_in = cache[index][0]
            dW, db, dx = layer.backward(x_in, delta, need_dx=index > 0)
            gradients[index] = (dW, db)
            if index > 0:
                # delta of the layer below: dx * f'(z) of THAT layer's activation (erratum 6)
                _, z_prev, a_prev = cache[index - 1]
                f_prime = ACTIVATIONS[self._layers[index - 1].activation][1]
                delta = [
                    [
                        dx[k][j] * f_prime(z_prev[k][j], a_prev[k][j])
                        for j in range(layer.n_inputs)
                    ]
                    for k in range(len(dx))
                ]
        return L, gradients

    def gradients(self, X, Y):
        """[(dW rows, db)] per layer: the gradients of the mean loss. The model is unchanged."""
        x, t = self._data(X, Y)
        return self._loss_and_gradients(x, t)[1]

    # ----- training
    def _sgd_step(self, x, t, learning_rate):
        # every gradient first, from the weights of the forward pass; then the update (erratum 3)
        L, gradients = self._loss_and_gradients(x, t)
        for layer, (dW, db) in zip(self._layers, gradients):
            for neuron, dW_i, db_i in zip(layer.neurons, dW, db):
                for j, dW_ij in enumerate(dW_i):
                    neuron.weights[j] = neuron.weights[j] - learning_rate * dW_ij
                neuron.bias = neuron.bias - learning_rate * db_i
        return L

    def backward(self, x, y, learning_rate) -> float:
        """One SGD step on a sample or a batch: ``W -= learning_rate * dW``, ``b -= learning_rate * db``.

        Returns the loss of the forward pass done before the step (erratum 8: no second forward).
        """
        x, t = self._data(x, y)
        return self._sgd_step(x, t, float(learning_rate))

    def train(self, X, Y, epochs, learning_rate):
        """The article's loop: per-sample SGD, samples in order. Returns the mean loss per epoch
        (the mean of the losses ``backward`` returned during that epoch)."""
        rows, single = self._inputs(X)
        if single:
            raise ValueError(f"train takes a batch of shape (n, {self.sizes[0]})")
        targets = self._targets(Y, len(rows), single=False)
        epochs = operator.index(epochs)
        learning_rate = float(learning_rate)
        epoch_losses = []
        for _ in range(epochs):
            total = 0.0
            for x_k, t_k in zip(rows, targets):  # same length: _targets checked it
                total += self._sgd_step([x_k], [t_k], learning_rate)
            epoch_losses.append(total / len(rows))
        return epoch_losses

    # ----- weights
    def get_weights(self):
        """[(W rows, b)] per layer, as copies."""
        return [(layer.weights, layer.biases) for layer in self._layers]

    def set_weights(self, weights):
        """Replace every layer's (W, b). Shapes are checked before anything changes."""
        weights = _plain(weights)
        if len(weights) != len(self._layers):
            raise ValueError(
                f"expected (W, b) for {len(self._layers)} layers, got {len(weights)}"
            )
        new = []
        for index, (layer, pair) in enumerate(zip(self._layers, weights)):
            W, b = (_plain(p) for p in pair)
            if not _is_row(W) or len(W) != layer.n_outputs:
                raise ValueError(
                    f"layer {index}: expected W of shape ({layer.n_outputs}, {layer.n_inputs}), got {_shape(W)}"
                )
            W = [
                _float_row(row, layer.n_inputs, f"layer {index}: W row {i}")
                for i, row in enumerate(W)
            ]
            b = _float_row(b, layer.n_outputs, f"layer {index}: b")
            new.append((W, b))
        for layer, (W, b) in zip(self._layers, new):
            for neuron, w_row, b_i in zip(layer.neurons, W, b):
                neuron.weights = w_row
                neuron.bias = b_i

    def copy(self):
        """An independent copy (same architecture, same weights)."""
        return _copy.deepcopy(self)

    # ----- checking what comes in (erratum 10: never truncate silently)
    def _inputs(self, x):
        """-> (rows (n, n_in) of floats, single) where single says x was one sample."""
        n_in = self._layers[0].n_inputs
        x = _plain(x)
        if not _is_row(x):
            raise ValueError(
                f"expected a sample ({n_in},) or a batch (n, {n_in}), got {x!r}"
            )
        items = [_plain(v) for v in x]
        nested = [_is_row(v) for v in items]
        if items and all(nested):
            return [
                _float_row(row, n_in, f"input row {k}") for k, row in enumerate(items)
            ], False
        if any(nested):
            raise ValueError("inputs mix numbers and rows")
        return [_float_row(items, n_in, "input")], True

    def _data(self, X, Y):
        x, single = self._inputs(X)
        return x, self._targets(Y, len(x), single)

    def _targets(self, y, n, single):
        """-> targets (n, m) of floats; cross_entropy class indices become one-hot rows."""
        m = self._layers[-1].n_outputs
        y = _plain(y)
        if self._loss == "cross_entropy":
            if single:
                rows = [y]
            elif _is_row(y) and all(not _is_row(_plain(v)) for v in y):
                rows = [_plain(v) for v in y]  # 1-D: one class index per sample
                if not all(_is_int(v) for v in rows):
                    raise ValueError(
                        "1-D cross_entropy targets must be integer class indices; "
                        f"give probabilities as rows of shape (n, {m})"
                    )
            elif _is_row(y):
                rows = [_plain(v) for v in y]
            else:
                raise ValueError(
                    f"expected {n} class indices or targets of shape ({n}, {m}), got {y!r}"
                )
            if len(rows) != n:
                raise ValueError(f"expected targets for {n} samples, got {len(rows)}")
            targets = []
            for k, row in enumerate(rows):
                if _is_int(row):
                    if not 0 <= row < m:
                        raise ValueError(
                            f"class index {row} of sample {k} is not in [0, {m})"
                        )
                    targets.append([1.0 if i == row else 0.0 for i in range(m)])
                else:
                    targets.append(
                        _float_row(row, m, f"target row {k}", low=0.0, high=1.0)
                    )
            return targets

        if self._loss == "binary_cross_entropy":
            check = {"low": 0.0, "high": 1.0}
        else:
            check = {"finite": True}
        if single:
            rows = [[y]] if (m == 1 and not _is_row(y)) else [y]
        elif _is_row(y) and len(y) > 0 and all(_is_row(_plain(v)) for v in y):
            rows = [_plain(v) for v in y]
        elif m == 1 and _is_row(y):
            # a 1-D Y is a column when the network has one output
            rows = [[v] for v in y]
        else:
            raise ValueError(
                f"expected targets of shape ({n}, {m}), got shape {_shape(y)}"
            )
        if len(rows) != n:
            raise ValueError(
                f"expected targets of shape ({n}, {m}), got shape {_shape(y)}"
            )
        return [
            _float_row(row, m, f"target row {k}", **check) for k, row in enumerate(rows)
        ]


def _plain(value):
    """An ndarray or numpy scalar as (nested) lists and Python numbers; anything else unchanged."""
    return value.tolist() if hasattr(value, "tolist") else value


def _is_row(value):
    return isinstance(value, (list, tuple))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _shape(value):
    value = _plain(value)
    if not _is_row(value):
        return "()"
    inner = {_shape(v) for v in value}
    if len(inner) == 1:
        rest = inner.pop()
        return f"({len(value)}{', ' + rest[1:-1] if rest != '()' else ''})"
    return f"({len(value)}, ragged)"


def _float_row(values, length, what, low=None, high=None, finite=False):
    """A row of exactly ``length`` floats; optionally each in [low, high] or finite."""
    values = _plain(values)
    if not _is_row(values):
        raise ValueError(f"{what}: expected {length} numbers, got {values!r}")
    if len(values) != length:
        raise ValueError(f"{what}: expected {length} values, got {len(values)}")
    row = []
    for v in values:
        v = _plain(v)
        if not isinstance(v, (int, float)):
            raise TypeError(f"{what}: expected numbers, got {v!r}")
        v = float(v)
        if finite and not math.isfinite(v):
            raise ValueError(f"{what}: expected finite values, got {v}")
        if low is not None and not low <= v <= high:
            raise ValueError(f"{what}: value {v} is not in [{low}, {high}]")
        row.append(v)
    return row


def _check_sizes(sizes):
    sizes = _plain(sizes)
    if (
        not _is_row(sizes)
        or len(sizes) < 2
        or not all(_is_int(s) and s >= 1 for s in sizes)
    ):
        raise ValueError(
            f"sizes must be a list of at least 2 integers >= 1, got {sizes!r}"
        )
    return list(sizes)


def _check_name(name, table, what):
    name = _ALIASES.get(name, name) if isinstance(name, str) else name
    if name not in table:
        valid = sorted(set(table) | (set(_ALIASES) if table is ACTIVATIONS else set()))
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(valid)}")
    return name


def _check_output_for_loss(output, loss):
    required = {"binary_cross_entropy": "sigmoid", "cross_entropy": "softmax"}.get(loss)
    if required is not None and output != required:
        raise ValueError(
            f"loss {loss!r} requires output_activation {required!r}, got {output!r}"
        )
    if loss == "mse" and output == "softmax":
        raise ValueError(
            "loss 'mse' does not allow a softmax output; use cross_entropy"
        )


# --------------------------------------------------------------------------------------------
# The article's backward pass, kept wrong on purpose
# --------------------------------------------------------------------------------------------
def _article_layer_forward(layer, inputs):
    """The article's ``Layer::forward``: per neuron, ``zip`` inputs with weights (truncating
    silently, erratum 10), add the bias. The article then applies ReLU in every neuron (erratum
    6); here each layer applies its own activation, so that the forward pass agrees with the
    network whose loss a gradient check differentiates."""
    z = []
    for neuron in layer.neurons:
        s = 0.0
        for x, w in zip(inputs, neuron.weights):
            s += x * w
        z.append(s + neuron.bias)
    return activate(layer.activation, z)


def article_backward(net, x, y, learning_rate):
    """The blog post's ``NeuralNetwork::backward``, translated line by line (one sample).

    Mutates ``net`` in place, like the article, and returns nothing. It is wrong; each erratum
    of ``article-errata.md`` is marked where it happens. Erratum 4 (the Rust does not compile:
    ``layer != self.layers.first().unwrap()`` borrows ``self.layers`` while ``iter_mut`` holds it,
    and ``Layer`` has no ``PartialEq``) cannot be reproduced in Python; here the comparison is
    by identity. Index errors are not caught: where the Rust would panic, this raises IndexError.
    So it runs to the end only where every index it takes exists: with widths that differ
    (e.g. [2, 8, 1]) erratum 2 raises; with equal widths w and L layers, erratum 5 raises unless
    w <= L ([2, 2, 2] runs, [3, 3, 3] asks for ``layers[2]`` of 2 layers). ``net`` must be a
    reference ``NeuralNetwork`` (it walks ``net.layers[...].neurons``).
    """
    x = [float(v) for v in _plain(x)]
    y = [float(v) for v in _plain(y)]
    layer_inputs = list(x)
    layer_outputs = []
    # Forward pass. Erratum 1: layer_inputs is overwritten at every layer, so afterwards it
    # holds the network's OUTPUT, not the last layer's input; nothing else is cached.
    for layer in net.layers:
        layer_outputs = _article_layer_forward(layer, layer_inputs)
        layer_inputs = list(layer_outputs)

    # Backward pass. Erratum 7: the error is t - o, not dL/do = 2 (o - t) / m of the reported
    # mean squared error. (zip truncates if y has the wrong length: erratum 10.)
    error = [t - o for t, o in zip(y, layer_outputs)]
    for layer in reversed(net.layers):
        prev_error = list(error)
        # Erratum 2: sized by the (wrong) cached vector; with widths that differ the indexing
        # below runs out of bounds: IndexError here, a panic in Rust.
        error = [0.0] * len(layer_inputs)
        for i, neuron in enumerate(layer.neurons):
            # Erratum 6: the ReLU derivative test, hard-coded for every layer whatever its
            # activation (and the output layer's too).
            gradient = prev_error[i] if layer_outputs[i] > 0.0 else 0.0
            for j in range(len(neuron.weights)):
                # Erratum 1: for the last layer layer_inputs[j] is output[j], not the hidden
                # activation h[j].
                delta = learning_rate * gradient * layer_inputs[j]
                # Erratum 3: the weight is updated BEFORE it carries the error backwards, so
                # the previous layer sees the new weight, not the one of the forward pass.
                neuron.weights[j] += delta
                error[j] += gradient * neuron.weights[j]
            neuron.bias += learning_rate * gradient
        layer_outputs = list(layer_inputs)
        if layer is not net.layers[0]:  # erratum 4: in Rust this line does not compile
            # Erratum 5: the layer list indexed by a NEURON COUNT; the input of the layer below
            # was known from the forward pass, nothing needs recomputing.
            layer_inputs = _article_layer_forward(
                net.layers[len(layer.neurons) - 1], layer_inputs
            )


def article_gradients(net, X, Y, learning_rate=1e-3):
    """The gradient the article's backward pass implies, for a gradient check to judge.

    For each sample k (in order) run ``article_backward`` on a fresh copy of ``net`` and take
    ``(W_before - W_after) / learning_rate`` (and the same for b); return the mean over the
    samples as [(dW, db)] per layer. ``net`` (a reference ``NeuralNetwork``) is not modified.
    IndexError from the article's code propagates.
    """
    rows, single = net._inputs(X)
    targets = net._targets(Y, len(rows), single)
    before = net.get_weights()
    total = [([[0.0] * len(W[0]) for _ in W], [0.0] * len(b)) for W, b in before]
    for x_k, t_k in zip(rows, targets):
        trial = net.copy()
        article_backward(trial, x_k, t_k, learning_rate)
        for (W0, b0), (W1, b1), (dW, db) in zip(before, trial.get_weights(), total):
            for i in range(len(W0)):
                for j in range(len(W0[i])):
                    dW[i][j] += (W0[i][j] - W1[i][j]) / learning_rate
                db[i] += (b0[i] - b1[i]) / learning_rate
    n = len(rows)
    return [
        ([[v / n for v in row] for row in dW], [v / n for v in db]) for dW, db in total
    ]
