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

Training with mini-batches (the second part of docs/maths.md) is ``NeuralNetwork.train_epoch``:
shuffle, batches, dropout masks, the weighted loss, L2, clipping and the optimizers SGD, RMSprop,
Adam, AdamW, each written per element as the maths writes it. The optimizers' arguments come
from ``ferrinet.optim`` (configuration only: the reference reads ``optimizer.to_dict()``, the
flat dict the Rust binding reads too).

At the end, ``article_backward`` keeps the blog post's backward pass (wrong on purpose, with its
errata numbered as in ``docs/article-errata.md``) so that tests can show what goes wrong with it.
"""

from __future__ import annotations

import copy as _copy
import math
import operator
import secrets
from typing import Any, Callable, Dict, List, Optional, Tuple

try:  # inside the ferrinet package: optimizer names and arguments (pure Python, no maths)
    from .optim import make_optimizer as _make_optimizer
except ImportError:  # reference.py loaded as a lone file: pass optimizer objects
    _make_optimizer = None  # type: ignore[assignment]

try:  # fit / evaluate: orchestration shared with the Rust network (no maths of its own);
    # training.py imports nothing from here: the imports run one way
    from .training import FitMixin as _FitMixin
except ImportError:  # reference.py loaded as a lone file: no fit

    class _FitMixin:  # type: ignore[no-redef]
        pass


__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "WEIGHTED_LOSSES",
    "DropoutMask",
    "Layer",
    "NeuralNetwork",
    "Neuron",
    "OptimizerState",
    "SplitMix64",
    "TrainingState",
    "article_backward",
    "article_gradients",
    "balanced_class_weight",
    "clip_by_global_norm",
    "draw_dropout_masks",
    "init_limit",
    "shuffle_order",
    "weighted_loss_and_delta",
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


def exp(z):
    return math.exp(z)


def exp_prime(z, a):
    return a  # d/dz exp(z) = exp(z), the value of the forward pass


def softmax(z_row):
    """Softmax of one row (output layer only): subtract the max, exponentiate, normalise."""
    mx = max(z_row)
    e = [math.exp(v - mx) for v in z_row]
    s = _sum(e)
    return [e_i / s for e_i in e]


# name -> (f, f'). Softmax works on a whole row, and its derivative is folded into
# cross_entropy's delta (a - t), so it has no f'.
ACTIVATIONS: Dict[str, Tuple[Callable[..., Any], Any]] = {
    "identity": (identity, identity_prime),
    "relu": (relu, relu_prime),
    "leaky_relu": (leaky_relu, leaky_relu_prime),
    "sigmoid": (sigmoid, sigmoid_prime),
    "tanh": (tanh, tanh_prime),
    "softmax": (softmax, None),
    "exp": (exp, exp_prime),
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
        [(c * (a[k][i] - t[k][i])) * f_prime(z[k][i], a[k][i]) for i in range(m)] for k in range(n)
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


def cross_entropy_per_sample(z, a, t):
    """The loss l_k of each row of PyTorch ``CrossEntropyLoss`` on the logits z (softmax output).

    Per row: ``lse = max(z) + log(sum exp(z - max(z)))`` (log-sum-exp, stable), and
    ``l_k = sum over i with t_i != 0 of t_i * (lse - z_i)``, i.e. ``-sum t_i log(softmax(z)_i)``.
    """
    m = len(z[0])
    losses = []
    for k in range(len(z)):
        mx = max(z[k])
        s = _sum(math.exp(z[k][i] - mx) for i in range(m))
        lse = mx + math.log(s)
        losses.append(_sum(t[k][i] * (lse - z[k][i]) for i in range(m) if t[k][i] != 0.0))
    return losses


def cross_entropy(z, a, t):
    """PyTorch ``CrossEntropyLoss``: the mean over the n rows of ``cross_entropy_per_sample``."""
    return _sum(cross_entropy_per_sample(z, a, t)) / len(z)


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


def poisson_deviance(z, t):
    """One term of the half Poisson deviance from the log-rate z (exp output), t >= 0::

        t ln(t / exp(z)) - t + exp(z)  =  (exp(z) - t) + t * (ln(t) - z)     for t > 0
                                          exp(z)                               for t = 0

    (0 ln 0 = 0). scikit-learn's ``MLPRegressor(loss="poisson")`` term (its ``poisson_loss``);
    PyTorch's ``PoissonNLLLoss(log_input=True)`` is exp(z) - t z, the same minus the constant
    t ln t - t. Written so that near the fit (z ~ ln t) no large t ln t and t z cancel.
    """
    e = math.exp(z)
    if t > 0.0:
        return (e - t) + t * (math.log(t) - z)
    return e


def poisson(z, a, t):
    """Half Poisson deviance: mean over n*m of ``poisson_deviance(z, t)``."""
    n, m = len(z), len(z[0])
    total = 0.0
    for k in range(n):
        for i in range(m):
            total += poisson_deviance(z[k][i], t[k][i])
    return total / (n * m)


def poisson_delta(z, a, t, f_prime):
    """dL/dz = (1/(n*m)) * (exp(z) - t): the exp's derivative cancels (log link)."""
    n, m = len(a), len(a[0])
    c = 1.0 / (n * m)
    return [[c * (a[k][i] - t[k][i]) for i in range(m)] for k in range(n)]


LOSSES = {
    "mse": (mse, mse_delta),
    "binary_cross_entropy": (binary_cross_entropy, binary_cross_entropy_delta),
    "cross_entropy": (cross_entropy, cross_entropy_delta),
    "poisson": (poisson, poisson_delta),
}
_DEFAULT_OUTPUT = {
    "mse": "identity",
    "binary_cross_entropy": "sigmoid",
    "cross_entropy": "softmax",
    "poisson": "exp",
}


# --------------------------------------------------------------------------------------------
# Weighted losses (sample_weight, class_weight). With weights w_k and S = sum of w_k over the
# batch: L = (sum over k of w_k * l_k) / S, where l_k is sample k's own loss (mse and bce: the
# mean over its m outputs). The seed is the unweighted one with 1/n replaced by w_k / S.
# --------------------------------------------------------------------------------------------
def mse_per_sample(z, a, t):
    """l_k = (sum over i of (a - t)**2) / m."""
    m = len(a[0])
    losses = []
    for k in range(len(a)):
        s = 0.0
        for i in range(m):
            d = a[k][i] - t[k][i]
            s += d * d
        losses.append(s / m)
    return losses


def mse_weighted_delta(z, a, t, f_prime, w, S):
    """dL/dz = c_k * (a - t) * f'(z), with c_k = (2 w_k) / (S m)."""
    m = len(a[0])
    delta = []
    for k in range(len(a)):
        c_k = (2.0 * w[k]) / (S * m)
        delta.append([(c_k * (a[k][i] - t[k][i])) * f_prime(z[k][i], a[k][i]) for i in range(m)])
    return delta


def binary_cross_entropy_per_sample(z, a, t):
    """l_k = (sum over i of bce_with_logits(z, t)) / m."""
    m = len(z[0])
    return [_sum(bce_with_logits(z[k][i], t[k][i]) for i in range(m)) / m for k in range(len(z))]


def binary_cross_entropy_weighted_delta(z, a, t, f_prime, w, S):
    """dL/dz = c_k * (sigmoid(z) - t), with c_k = w_k / (S m)."""
    m = len(a[0])
    delta = []
    for k in range(len(a)):
        c_k = w[k] / (S * m)
        delta.append([c_k * (a[k][i] - t[k][i]) for i in range(m)])
    return delta


def cross_entropy_weighted_delta(z, a, t, f_prime, w, S):
    """dL/dz = c_k * (softmax(z) * T_k - t), with c_k = w_k / S."""
    m = len(a[0])
    delta = []
    for k in range(len(a)):
        c_k = w[k] / S
        T_k = _sum(t[k])
        delta.append([c_k * (a[k][i] * T_k - t[k][i]) for i in range(m)])
    return delta


def poisson_per_sample(z, a, t):
    """l_k = (sum over i of poisson_deviance(z, t)) / m."""
    m = len(z[0])
    return [_sum(poisson_deviance(z[k][i], t[k][i]) for i in range(m)) / m for k in range(len(z))]


def poisson_weighted_delta(z, a, t, f_prime, w, S):
    """dL/dz = c_k * (exp(z) - t), with c_k = w_k / (S m)."""
    return binary_cross_entropy_weighted_delta(z, a, t, f_prime, w, S)


WEIGHTED_LOSSES = {
    "mse": (mse_per_sample, mse_weighted_delta),
    "binary_cross_entropy": (
        binary_cross_entropy_per_sample,
        binary_cross_entropy_weighted_delta,
    ),
    "cross_entropy": (cross_entropy_per_sample, cross_entropy_weighted_delta),
    "poisson": (poisson_per_sample, poisson_weighted_delta),
}


def weighted_loss_and_delta(loss, z, a, t, f_prime, w):
    """L = (sum from 0.0 of w_k * l_k) / S and its seed delta, S = sum from 0.0 of w_k.

    A batch whose weights are all 0 (S = 0) has nothing to learn from: L = 0 and delta = 0.
    """
    per_sample, weighted_delta = WEIGHTED_LOSSES[loss]
    S = _sum(w)
    if S == 0.0:
        return 0.0, [[0.0] * len(a[0]) for _ in a]
    losses = per_sample(z, a, t)
    L = _sum(w_k * l_k for w_k, l_k in zip(w, losses)) / S
    return L, weighted_delta(z, a, t, f_prime, w, S)


# --------------------------------------------------------------------------------------------
# Training with mini-batches: shuffle, dropout, clipping, optimizers (docs/maths.md, part two)
# --------------------------------------------------------------------------------------------
def shuffle_order(n, rng):
    """Fisher-Yates (Durstenfeld) on ``order = [0, 1, ..., n-1]``, drawing from ``rng``::

        for i = n-1 down to 1: j = floor(uniform() * (i + 1)); swap(order[i], order[j])

    n - 1 numbers are drawn. Returns the order.
    """
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = math.floor(rng.uniform() * (i + 1))
        order[i], order[j] = order[j], order[i]
    return order


class DropoutMask:
    """Inverted dropout of one hidden layer's output a (n, width), drop probability p::

        keep[k][i] = uniform() >= p;   scale = 1 / (1 - p)
        forward:   a'[k][i]    = a[k][i] * scale     if keep[k][i] else 0.0
        backward:  dL/da[k][i] = dL/da'[k][i] * scale if keep[k][i] else 0.0

    a' is what the next layer reads; f'(z, a) of this layer still takes a.
    """

    def __init__(self, p, keep):
        self.p = p
        self.keep = keep  # (n, width) of bools
        self.scale = 1.0 / (1.0 - p)

    @classmethod
    def draw(cls, p, n, width, rng):
        """Draw keep row-major: n * width numbers from ``rng``."""
        return cls(p, [[rng.uniform() >= p for _ in range(width)] for _ in range(n)])

    def forward(self, a):
        return [
            [a_i * self.scale if keep_i else 0.0 for a_i, keep_i in zip(a_k, keep_k)]
            for a_k, keep_k in zip(a, self.keep)
        ]

    def backward(self, da):
        """dL/da' (n, width) -> dL/da."""
        return [
            [d_i * self.scale if keep_i else 0.0 for d_i, keep_i in zip(d_k, keep_k)]
            for d_k, keep_k in zip(da, self.keep)
        ]

    def __repr__(self):
        return f"DropoutMask(p={self.p!r}, shape={_shape(self.keep)})"


def draw_dropout_masks(rates, n, widths, rng):
    """One mask per hidden layer, in layer order: None where p = 0 (nothing drawn), else
    ``DropoutMask.draw(p, n, width, rng)``. ``rates`` and ``widths``: one per hidden layer."""
    return [
        None if p == 0.0 else DropoutMask.draw(p, n, width, rng) for p, width in zip(rates, widths)
    ]


def clip_by_global_norm(gradients, max_norm):
    """Scale every gradient in place when their global norm exceeds max_norm (PyTorch
    ``clip_grad_norm_``); returns the norm before clipping::

        s = sum from 0.0, per layer, of g*g over dW (row-major) then db;  norm = sqrt(s)
        coef = max_norm / (norm + 1e-6);  if coef < 1: g = g * coef
    """
    s = 0.0
    for dW, db in gradients:
        for row in dW:
            for g in row:
                s += g * g
        for g in db:
            s += g * g
    norm = math.sqrt(s)
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        for dW, db in gradients:
            for row in dW:
                for j, g in enumerate(row):
                    row[j] = g * coef
            for i, g in enumerate(db):
                db[i] = g * coef
    return norm


def _sqrt(x):
    """IEEE sqrt: NaN below zero (where ``math.sqrt`` raises), as Rust's ``f64::sqrt``."""
    return math.sqrt(x) if x >= 0.0 else math.nan


class OptimizerState:
    """An optimizer's memory, and its step, per parameter element (docs/maths.md).

    The parameters are one flat list in the network's order: per layer, W row-major, then b.
    ``t`` is the number of steps taken; the buffers, one float per parameter, start at 0.0:
    ``b`` momentum (PyTorch's momentum_buffer), ``v`` running mean of g*g (square_avg,
    exp_avg_sq), ``ga`` running mean of g (centered RMSprop's grad_avg), ``m`` Adam's running
    mean of g (exp_avg), ``vmax`` amsgrad's running max of v (max_exp_avg_sq).

    ``optimizer`` is a ``ferrinet.optim`` object; only ``optimizer.to_dict()`` is read. The
    learning rate of each step is passed to ``step``: schedules change it between epochs, so
    the optimizer's own ``lr`` is only where it starts.
    """

    def __init__(self, optimizer, n_parameters):
        self.config = optimizer.to_dict()
        self.t = 0
        self.b = [0.0] * n_parameters
        self.v = [0.0] * n_parameters
        self.ga = [0.0] * n_parameters
        self.m = [0.0] * n_parameters
        self.vmax = [0.0] * n_parameters

    def step(self, p, g, lr):
        """One step: parameters p and gradients g (flat lists, same order) -> the new p."""
        self.t += 1
        update = {
            "sgd": self._sgd,
            "rmsprop": self._rmsprop,
            "adam": self._adam,
            "adamw": self._adam,
        }[self.config["name"]]
        return update(p, g, lr)

    def _sgd(self, p, g, lr):
        """SGD(lr, momentum, dampening, nesterov, weight_decay), torch.optim.SGD::

        if weight_decay != 0: g = g + weight_decay * p
        if momentum != 0:
            b = g if t == 1 else momentum * b + (1 - dampening) * g
            g = g + momentum * b  if nesterov  else  g = b
        p = p - lr * g
        """
        c = self.config
        momentum, weight_decay = c["momentum"], c["weight_decay"]
        one_minus_dampening = 1.0 - c["dampening"]
        new_p = []
        for i, (p_i, g_i) in enumerate(zip(p, g)):
            if weight_decay != 0.0:
                g_i = g_i + weight_decay * p_i
            if momentum != 0.0:
                if self.t == 1:
                    self.b[i] = g_i
                else:
                    self.b[i] = momentum * self.b[i] + one_minus_dampening * g_i
                if c["nesterov"]:
                    g_i = g_i + momentum * self.b[i]
                else:
                    g_i = self.b[i]
            new_p.append(p_i - lr * g_i)
        return new_p

    def _rmsprop(self, p, g, lr):
        """RMSprop(lr, alpha, eps, weight_decay, momentum, centered), torch.optim.RMSprop::

        if weight_decay != 0: g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * (g * g)
        if centered: ga = alpha * ga + (1 - alpha) * g;  avg = sqrt(v - ga * ga) + eps
        else:        avg = sqrt(v) + eps
        if momentum > 0: b = momentum * b + g / avg;  p = p - lr * b
        else:            p = p - lr * (g / avg)
        """
        c = self.config
        alpha, eps, momentum, weight_decay = (
            c["alpha"],
            c["eps"],
            c["momentum"],
            c["weight_decay"],
        )
        one_minus_alpha = 1.0 - alpha
        new_p = []
        for i, (p_i, g_i) in enumerate(zip(p, g)):
            if weight_decay != 0.0:
                g_i = g_i + weight_decay * p_i
            self.v[i] = alpha * self.v[i] + one_minus_alpha * (g_i * g_i)
            if c["centered"]:
                self.ga[i] = alpha * self.ga[i] + one_minus_alpha * g_i
                avg = _sqrt(self.v[i] - self.ga[i] * self.ga[i]) + eps
            else:
                avg = _sqrt(self.v[i]) + eps
            if momentum > 0.0:
                self.b[i] = momentum * self.b[i] + g_i / avg
                new_p.append(p_i - lr * self.b[i])
            else:
                new_p.append(p_i - lr * (g_i / avg))
        return new_p

    def _adam(self, p, g, lr):
        """Adam and AdamW(lr, betas, eps, weight_decay, amsgrad), torch.optim.Adam / AdamW::

        AdamW:  p = p * (1 - lr * weight_decay), then Adam with weight_decay = 0
        Adam:   if weight_decay != 0: g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * (g * g)
        bc1 = 1 - beta1**t;  bc2 = 1 - beta2**t
        step_size = lr / bc1;  inv = 1 / sqrt(bc2)          (once per step)
        vhat = max(vmax, v) (vmax kept) if amsgrad else v
        p = p - (step_size * m) / (sqrt(vhat) * inv + eps)

        This is lr * (m / bc1) / (sqrt(vhat / bc2) + eps) arranged as PyTorch arranges it
        (step_size, and sqrt(v) / sqrt(bc2)), with the division by sqrt(bc2) made a product
        with its reciprocal: one division per element.

        eps_placement "sklearn" (scikit-learn's AdamOptimizer): eps is added to sqrt(vhat)
        itself, the corrections folded into the step size::

            step_size = lr * sqrt(bc2) / bc1;  inv = 1.0       (sqrt(vhat) * 1.0 is exact)
        """
        c = self.config
        beta1, beta2, eps, weight_decay = (
            c["beta1"],
            c["beta2"],
            c["eps"],
            c["weight_decay"],
        )
        decoupled = c["name"] == "adamw"
        decay = 1.0 - lr * weight_decay  # AdamW's factor, once per step
        one_minus_beta1 = 1.0 - beta1
        one_minus_beta2 = 1.0 - beta2
        t = float(self.t)
        bc1 = 1.0 - beta1**t  # C's pow
        bc2 = 1.0 - beta2**t
        if c.get("eps_placement", "pytorch") == "sklearn":
            step_size = lr * _sqrt(bc2) / bc1
            inv_sqrt_bc2 = 1.0
        else:
            step_size = lr / bc1
            inv_sqrt_bc2 = 1.0 / _sqrt(bc2)
        new_p = []
        for i, (p_i, g_i) in enumerate(zip(p, g)):
            if decoupled:
                p_i = p_i * decay
            elif weight_decay != 0.0:
                g_i = g_i + weight_decay * p_i
            self.m[i] = beta1 * self.m[i] + one_minus_beta1 * g_i
            self.v[i] = beta2 * self.v[i] + one_minus_beta2 * (g_i * g_i)
            if c["amsgrad"]:
                self.vmax[i] = max(self.vmax[i], self.v[i])
                vhat = self.vmax[i]
            else:
                vhat = self.v[i]
            denom = _sqrt(vhat) * inv_sqrt_bc2 + eps
            new_p.append(p_i - (step_size * self.m[i]) / denom)
        return new_p


class TrainingState:
    """What training remembers between ``train_epoch`` calls: it lives on the network.

    ``seed`` and ``rng`` (one SplitMix64 per training run, seeded once: it draws the shuffles
    and the dropout masks), ``optimizer`` (the ``ferrinet.optim`` object, its ``lr`` the
    starting one), ``optimizer_state`` (step count t and buffers), ``epoch`` (epochs done),
    ``lr`` (the learning rate of the next step).
    """

    def __init__(self, seed, optimizer, n_parameters):
        self.seed = seed
        self.rng = SplitMix64(seed)
        self.optimizer = optimizer
        self.optimizer_state = OptimizerState(optimizer, n_parameters)
        self.epoch = 0
        self.lr = optimizer.to_dict()["lr"]

    @property
    def t(self):
        """Optimizer steps taken."""
        return self.optimizer_state.t

    def __repr__(self):
        return (
            f"TrainingState(seed={self.seed}, optimizer={self.optimizer!r}, epoch={self.epoch}, "
            f"t={self.t}, lr={self.lr!r})"
        )


def balanced_class_weight(classes):
    """scikit-learn's ``class_weight="balanced"``: ``n / (n_classes * count_c)`` for each class c
    present in ``classes`` (one class per sample), n_classes the number of distinct classes."""
    counts: Dict[Any, int] = {}
    for c in classes:
        counts[c] = counts.get(c, 0) + 1
    n, n_classes = len(classes), len(counts)
    return {c: n / (n_classes * count) for c, count in sorted(counts.items())}


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
            [_sum(delta[k][i] * x[k][j] for k in range(n)) for j in range(self.n_inputs)]
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


class NeuralNetwork(_FitMixin):
    """A multilayer perceptron trained by SGD or mini-batch optimizers, following docs/maths.md.

    ``sizes``: widths, input first, e.g. ``[2, 8, 1]``. ``activation``: one name for every hidden
    layer, or a list with one name per hidden layer. ``output_activation``: None picks the one
    that goes with the loss (mse: identity, binary_cross_entropy: sigmoid, cross_entropy:
    softmax). ``loss``: mse (PyTorch MSELoss), binary_cross_entropy (BCEWithLogitsLoss),
    cross_entropy (CrossEntropyLoss). ``seed``: int in [0, 2**64), None for a random one.

    Inputs are a sample (a list of n_in floats) or a batch (a list of rows). Targets: for mse
    and binary_cross_entropy the shape of the output (a 1-D Y with a batch is a column when
    m == 1); for cross_entropy class indices (an int per sample) or rows of probabilities.

    Training state. ``train`` and ``backward`` are plain SGD and remember nothing. ``train_epoch``
    (mini-batches, optimizers, dropout, ...) keeps what must carry over from one epoch to the
    next in ``training_state`` (a ``TrainingState``, None until the first ``train_epoch``): the
    SplitMix64 generator seeded with ``seed`` (it draws every shuffle and dropout mask), the
    optimizer and its per-parameter buffers and step count t, the number of epochs done, and
    the current learning rate. The first ``train_epoch`` creates it from its ``seed`` and
    ``optimizer`` arguments; later calls continue it, so N calls are one run of N epochs (they
    must then be given the same seed and optimizer, else ValueError). ``reset_training()``
    drops it (the weights stay); ``set_learning_rate`` changes the current learning rate, which
    ``learning_rate`` reads. ``copy()`` copies the state too.
    """

    def __init__(self, sizes, activation="relu", output_activation=None, loss="mse", seed=0):
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
        self.training_state: Optional[TrainingState] = None  # created by the first train_epoch
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
    def _forward(self, x, masks=None):
        """Forward pass on a batch x (n, n_in), caching (x, z, a) for every layer.

        ``masks``: None, or one ``DropoutMask`` or None per hidden layer; the next layer then
        reads the masked a' while the cache keeps a (f' needs it).
        """
        cache = []
        for index, layer in enumerate(self._layers):
            z, a = layer.forward(x)
            cache.append((x, z, a))
            mask = masks[index] if masks is not None and index < len(masks) else None
            x = a if mask is None else mask.forward(a)
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
    def compute_loss(self, X, Y, l2=0.0, sample_weight=None, *, masks=None) -> float:
        """The loss L of the targets Y for the inputs X (a sample or a batch).

        By default the mean loss. ``sample_weight`` (one weight >= 0 per sample): the weighted
        mean ``(sum of w_k * l_k) / (sum of w_k)``. ``l2``: plus ``(0.5 * l2) * sum of W**2``
        (weights only). ``masks``: dropout masks to apply (``draw_dropout_masks``), to check
        the gradient of a dropout step; the loss is then the training objective of that step.
        """
        x, t, w, masks, l2 = self._loss_arguments(X, Y, l2, sample_weight, masks)
        cache = self._forward(x, masks)
        _, z, a = cache[-1]
        return self._objective(z, a, t, w, l2)[0]

    def gradients(self, X, Y, l2=0.0, sample_weight=None, *, masks=None):
        """[(dW rows, db)] per layer: the gradients of ``compute_loss`` (same arguments).
        The model is unchanged."""
        x, t, w, masks, l2 = self._loss_arguments(X, Y, l2, sample_weight, masks)
        return self._loss_and_gradients(x, t, w, masks, l2)[1]

    def _objective(self, z, a, t, w=None, l2=0.0):
        """The training objective L of the output (z, a) and the seed delta = dL/dz.

        Unweighted (w None): the mean loss of docs/maths.md, part one. Weighted: ``L = (sum of
        w_k * l_k) / S``. Then, when l2 != 0, ``L += (0.5 * l2) * (sum over layers, then W
        row-major, of W * W)``; the penalty has no z in it, so the seed is the loss's own.
        """
        f_prime = ACTIVATIONS[self._layers[-1].activation][1]
        if w is None:
            loss_value, loss_delta = LOSSES[self._loss]
            L, delta = loss_value(z, a, t), loss_delta(z, a, t, f_prime)
        else:
            L, delta = weighted_loss_and_delta(self._loss, z, a, t, f_prime, w)
        if l2 != 0.0:
            squares = 0.0
            for layer in self._layers:
                for neuron in layer.neurons:
                    for w_ij in neuron.weights:
                        squares += w_ij * w_ij
            L += (0.5 * l2) * squares
        return L, delta

    def _loss_and_gradients(self, x, t, w=None, masks=None, l2=0.0):
        """L and [(dW, db)] per layer, by one forward pass and the chain rule (docs/maths.md).

        ``w``: sample weights (None: the plain mean); ``masks``: dropout masks per hidden layer
        (None: no dropout); ``l2``: the L2 penalty, whose gradient ``l2 * W`` is added to dW
        after backprop.
        """
        return self._loss_gradients_output(x, t, w, masks, l2)[:2]

    def _loss_gradients_output(self, x, t, w=None, masks=None, l2=0.0):
        """``_loss_and_gradients`` and the output a of its forward pass."""
        cache = self._forward(x, masks)
        _, z, a = cache[-1]
        L, delta = self._objective(z, a, t, w, l2)
        gradients: List[Any] = [None] * len(self._layers)
        for index in reversed(range(len(self._layers))):
            layer = self._layers[index]
            x_in = cache[index][0]
            dW, db, dx = layer.backward(x_in, delta, need_dx=index > 0)
            gradients[index] = (dW, db)
            if index > 0:
                mask = masks[index - 1] if masks is not None else None
                if mask is not None:
                    dx = mask.backward(dx)  # dL/da' -> dL/da, through the dropout mask
                # delta of the layer below: dx * f'(z) of THAT layer's activation (erratum 6)
                _, z_prev, a_prev = cache[index - 1]
                f_prime = ACTIVATIONS[self._layers[index - 1].activation][1]
                delta = [
                    [dx[k][j] * f_prime(z_prev[k][j], a_prev[k][j]) for j in range(layer.n_inputs)]
                    for k in range(len(dx))
                ]
        if l2 != 0.0:
            for layer, (dW, _) in zip(self._layers, gradients):
                for neuron, dW_i in zip(layer.neurons, dW):
                    for j, w_ij in enumerate(neuron.weights):
                        dW_i[j] = dW_i[j] + l2 * w_ij
        return L, gradients, a

    def _loss_arguments(self, X, Y, l2, sample_weight, masks):
        """Checks compute_loss's and gradients' arguments -> (x, t, w, masks, l2)."""
        x, t = self._data(X, Y)
        l2 = _check_real(l2, "l2", low=0.0)
        w = None
        if sample_weight is not None:
            w = _check_sample_weight(sample_weight, len(x))
            if _sum(w) == 0.0:
                raise ValueError("sample_weight: the weights sum to 0; nothing to average")
        if masks is not None:
            masks = list(masks)
            widths = [layer.n_outputs for layer in self._layers[:-1]]
            if len(masks) != len(widths):
                raise ValueError(
                    f"masks: expected one mask (or None) per hidden layer ({len(widths)}), "
                    f"got {len(masks)}"
                )
            for index, (mask, width) in enumerate(zip(masks, widths)):
                if mask is not None and (
                    len(mask.keep) != len(x) or any(len(row) != width for row in mask.keep)
                ):
                    raise ValueError(
                        f"masks[{index}]: expected shape ({len(x)}, {width}), "
                        f"got {_shape(mask.keep)}"
                    )
        return x, t, w, masks, l2

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

    # ----- training with mini-batches
    def train_epoch(
        self,
        X,
        Y,
        batch_size=32,
        optimizer="sgd",
        learning_rate=None,
        shuffle=True,
        seed=0,
        l2=0.0,
        dropout=None,
        clip_norm=None,
        sample_weight=None,
        class_weight=None,
        **optimizer_options,
    ) -> float:
        """One epoch of mini-batch training (docs/maths.md, "Training with mini-batches").
        Returns the epoch loss: ``(sum over batches of L_b * n_b) / n``, L_b the training
        objective of batch b before its update (dropout active, L2 included).

        ``optimizer``: a ``ferrinet.optim`` object, or a name ("sgd", "rmsprop", "adam",
        "adamw") built with ``lr=learning_rate`` and ``optimizer_options``. ``seed`` seeds the
        generator of the shuffles and dropout masks (None: a random seed). Both are read by the
        first call only, which creates ``training_state``; later calls continue it (see the
        class docstring). ``shuffle``: a new Fisher-Yates permutation each epoch. ``l2``: L2
        penalty on the weights. ``dropout``: None, one p for every hidden layer, or one p per
        hidden layer (0 <= p < 1). ``clip_norm``: clip the gradients' global norm to it.
        ``sample_weight``: one weight >= 0 per sample. ``class_weight``: a dict {class: weight}
        (missing classes weigh 1) or "balanced" (``balanced_class_weight`` of the classes of Y);
        the class of a sample is its class index (cross_entropy: the argmax of its target row)
        or, for binary_cross_entropy with one output, its target 0 or 1. Per batch::

            forward with dropout (masks drawn now) -> loss (+ L2) -> backprop (through masks)
            -> dW += l2 * W -> clip -> optimizer step
        """
        return self._epoch(
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

    def _fit_train_epoch(self, plan):
        """``fit``'s epoch -> (loss, accuracy or None): ``train_epoch``, counting a classifier's
        accuracy from the outputs of each batch's forward pass as the epoch runs (what the
        Rust core does): ``sum of w_k c_k / sum of w_k`` over the samples in the order they
        were taken, c_k the score of ``training.accuracy``, w_k the user's sample weight (1
        without)."""
        return self._epoch(
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

    def _epoch(
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
    ):
        """``train_epoch``'s checks and epoch -> (loss, running accuracy or None)."""
        # check everything before anything changes
        rows, single = self._inputs(X)
        if single:
            raise ValueError(f"train_epoch takes a batch of shape (n, {self.sizes[0]})")
        targets = self._targets(Y, len(rows), single=False)
        n = len(rows)
        batch_size = _check_count(batch_size, "batch_size")
        if not isinstance(shuffle, bool):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        l2 = _check_real(l2, "l2", low=0.0)
        rates = self._dropout_rates(dropout)
        if clip_norm is not None:
            clip_norm = _check_real(clip_norm, "clip_norm", low=0.0, low_open=True)
        weights = self._sample_weights(targets, sample_weight, class_weight)
        if weights is not None and _sum(weights) == 0.0:
            raise ValueError("the sample weights sum to 0; nothing to learn from")
        optimizer = self._optimizer(optimizer, learning_rate, optimizer_options)
        state = self.training_state
        if state is None:
            state = TrainingState(
                secrets.randbits(64) if seed is None else seed,
                optimizer,
                self.n_parameters,
            )
        else:
            if seed is not None and seed != state.seed:
                raise ValueError(
                    f"this network's training run was started with seed={state.seed}, got "
                    f"seed={seed!r}; call reset_training() first to start a new run"
                )
            if optimizer.to_dict() != state.optimizer.to_dict():
                raise ValueError(
                    f"this network's training run was started with {state.optimizer!r}, got "
                    f"{optimizer!r}; call reset_training() first to start a new run"
                )
        self.training_state = state

        widths = [layer.n_outputs for layer in self._layers[:-1]]
        order = shuffle_order(n, state.rng) if shuffle else list(range(n))
        if measure:
            acc_w = None if accuracy_weight is None else [float(v) for v in accuracy_weight]
        total = 0.0
        hits = seen = 0.0
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            x = [rows[k] for k in batch]
            t = [targets[k] for k in batch]
            w = None if weights is None else [weights[k] for k in batch]
            masks = draw_dropout_masks(rates, len(batch), widths, state.rng)
            L, gradients, output = self._loss_gradients_output(x, t, w, masks, l2)
            if clip_norm is not None:
                clip_by_global_norm(gradients, clip_norm)
            self._optimizer_step(state, gradients)
            total += L * len(batch)
            if measure:  # the running accuracy, from this batch's outputs
                for k, p, t_k in zip(batch, output, t):
                    w_k = 1.0 if acc_w is None else acc_w[k]
                    hits += w_k * _accuracy_score(self._loss, p, t_k)
                    seen += w_k
        state.epoch += 1
        return total / n, (hits / seen if measure else None)

    def _optimizer_step(self, state, gradients):
        """Flatten (per layer: W row-major, then b), step, write back."""
        p, g = [], []
        for layer, (dW, db) in zip(self._layers, gradients):
            for neuron, dW_i in zip(layer.neurons, dW):
                p.extend(neuron.weights)
                g.extend(dW_i)
            p.extend(neuron.bias for neuron in layer.neurons)
            g.extend(db)
        new_p = iter(state.optimizer_state.step(p, g, state.lr))
        for layer in self._layers:
            for neuron in layer.neurons:
                neuron.weights = [next(new_p) for _ in neuron.weights]
            for neuron in layer.neurons:
                neuron.bias = next(new_p)

    @property
    def learning_rate(self):
        """The learning rate of the next training step; None before ``train_epoch``."""
        return None if self.training_state is None else self.training_state.lr

    def set_learning_rate(self, learning_rate):
        """Change the current learning rate (a schedule does, between epochs)."""
        if self.training_state is None:
            raise ValueError(
                "no training run to change the learning rate of; call train_epoch first"
            )
        self.training_state.lr = _check_real(learning_rate, "learning_rate", low=0.0)

    def reset_training(self):
        """Forget the training state (generator, optimizer buffers, epoch, lr); keep the weights."""
        self.training_state = None

    def _start_run(self, optimizer, seed):
        """Start a training run without training (``fit``'s hook): a new ``TrainingState`` with
        this optimizer and seed (None: a random one)."""
        if seed is None:
            seed = secrets.randbits(64)
        self.training_state = TrainingState(seed, optimizer, self.n_parameters)

    def sample_weights(self, Y, sample_weight=None, class_weight=None):
        """The weight w_k of each sample, ``sample_weight[k] * class_weight[class of k]``, as
        ``train_epoch`` uses them; None when neither is given."""
        y = _plain(Y)
        if not _is_row(y):
            raise ValueError(f"expected the targets of a batch, got {y!r}")
        targets = self._targets(y, len(y), single=False)
        return self._sample_weights(targets, sample_weight, class_weight)

    def _sample_weights(self, targets, sample_weight, class_weight):
        if sample_weight is None and class_weight is None:
            return None
        n = len(targets)
        weights = [1.0] * n
        if sample_weight is not None:
            weights = _check_sample_weight(sample_weight, n)
        if class_weight is not None:
            classes = self._classes(targets)
            if isinstance(class_weight, str):
                if class_weight != "balanced":
                    raise ValueError(
                        f"class_weight must be a dict or 'balanced', got {class_weight!r}"
                    )
                table = balanced_class_weight(classes)
            else:
                table = self._check_class_weight(class_weight)
            weights = [w_k * table.get(c, 1.0) for w_k, c in zip(weights, classes)]
        return weights

    def _classes(self, targets):
        """The class of each sample: the argmax of its row (cross_entropy; the first largest),
        or its target 0 or 1 (binary_cross_entropy with one output)."""
        m = self._layers[-1].n_outputs
        if self._loss == "cross_entropy":
            return [max(range(m), key=row.__getitem__) for row in targets]
        if self._loss == "binary_cross_entropy" and m == 1:
            classes = []
            for k, (t_k,) in enumerate(targets):
                if t_k not in (0.0, 1.0):
                    raise ValueError(
                        f"class_weight needs targets 0 or 1; sample {k} has target {t_k}"
                    )
                classes.append(int(t_k))
            return classes
        raise ValueError(
            "class_weight needs loss 'cross_entropy', or 'binary_cross_entropy' with one "
            f"output; this network has loss {self._loss!r} with {m} outputs"
        )

    def _check_class_weight(self, class_weight):
        if not isinstance(class_weight, dict):
            raise TypeError(
                f"class_weight must be a dict {{class: weight}} or 'balanced', got {class_weight!r}"
            )
        m = self._layers[-1].n_outputs
        n_classes = m if self._loss == "cross_entropy" else 2
        table = {}
        for c, w in class_weight.items():
            c = _plain(c)
            if not _is_int(c) or not 0 <= c < n_classes:
                raise ValueError(
                    f"class_weight: classes are integers in [0, {n_classes}), got {c!r}"
                )
            table[c] = _check_real(w, f"class_weight[{c}]", low=0.0)
        return table

    def _dropout_rates(self, dropout):
        """One drop probability per hidden layer, each in [0, 1)."""
        n_hidden = len(self._layers) - 1
        if dropout is None:
            return [0.0] * n_hidden
        dropout = _plain(dropout)
        if _is_row(dropout):
            if len(dropout) != n_hidden:
                raise ValueError(
                    f"dropout: expected one p per hidden layer ({n_hidden}), got {len(dropout)}"
                )
            rates = list(dropout)
        else:
            rates = [dropout] * n_hidden
        return [_check_real(p, "dropout", low=0.0, high=1.0, high_open=True) for p in rates]

    def _optimizer(self, optimizer, learning_rate, options):
        """An optimizer object: ``ferrinet.optim.make_optimizer`` (names or objects)."""
        if _make_optimizer is not None:
            return _make_optimizer(optimizer, learning_rate, **options)
        if hasattr(optimizer, "to_dict") and learning_rate is None and not options:
            return optimizer
        raise TypeError(
            "without the ferrinet package (ferrinet.optim) the optimizer must be an object "
            f"with to_dict(), given alone; got {optimizer!r}"
        )

    # ----- weights
    def get_weights(self):
        """[(W rows, b)] per layer, as copies."""
        return [(layer.weights, layer.biases) for layer in self._layers]

    def set_weights(self, weights):
        """Replace every layer's (W, b). Shapes are checked before anything changes."""
        weights = _plain(weights)
        if len(weights) != len(self._layers):
            raise ValueError(f"expected (W, b) for {len(self._layers)} layers, got {len(weights)}")
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
            raise ValueError(f"expected a sample ({n_in},) or a batch (n, {n_in}), got {x!r}")
        items = [_plain(v) for v in x]
        nested = [_is_row(v) for v in items]
        if items and all(nested):
            return [_float_row(row, n_in, f"input row {k}") for k, row in enumerate(items)], False
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
                        raise ValueError(f"class index {row} of sample {k} is not in [0, {m})")
                    targets.append([1.0 if i == row else 0.0 for i in range(m)])
                else:
                    targets.append(_float_row(row, m, f"target row {k}", low=0.0, high=1.0))
            return targets

        if self._loss == "binary_cross_entropy":
            check = {"low": 0.0, "high": 1.0}
        elif self._loss == "poisson":
            check = {"low": 0.0, "high": math.inf, "finite": True}  # counts or rates
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
            raise ValueError(f"expected targets of shape ({n}, {m}), got shape {_shape(y)}")
        if len(rows) != n:
            raise ValueError(f"expected targets of shape ({n}, {m}), got shape {_shape(y)}")
        return [_float_row(row, m, f"target row {k}", **check) for k, row in enumerate(rows)]


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
            if high == math.inf:
                raise ValueError(f"{what}: value {v} is not >= {low}")
            raise ValueError(f"{what}: value {v} is not in [{low}, {high}]")
        row.append(v)
    return row


def _check_real(value, what, low=None, high=None, low_open=False, high_open=False):
    """A finite real (not a bool) as a float, optionally in [low, high] (or open ends)."""
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{what} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"{what} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return value


def _check_count(value, what):
    """An integer >= 1."""
    value = _plain(value)
    if not _is_int(value) or value < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {value!r}")
    return value


def _check_sample_weight(sample_weight, n):
    """n finite weights >= 0."""
    sample_weight = _plain(sample_weight)
    if not _is_row(sample_weight) or len(sample_weight) != n:
        raise ValueError(
            f"sample_weight: expected {n} weights (one per sample), got shape {_shape(sample_weight)}"
        )
    return [_check_real(w, f"sample_weight[{k}]", low=0.0) for k, w in enumerate(sample_weight)]


def _check_sizes(sizes):
    sizes = _plain(sizes)
    if not _is_row(sizes) or len(sizes) < 2 or not all(_is_int(s) and s >= 1 for s in sizes):
        raise ValueError(f"sizes must be a list of at least 2 integers >= 1, got {sizes!r}")
    return list(sizes)


def _check_name(name, table, what):
    name = _ALIASES.get(name, name) if isinstance(name, str) else name
    if name not in table:
        valid = sorted(set(table) | (set(_ALIASES) if table is ACTIVATIONS else set()))
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(valid)}")
    return name


def _check_output_for_loss(output, loss):
    required = {
        "binary_cross_entropy": "sigmoid",
        "cross_entropy": "softmax",
        "poisson": "exp",
    }.get(loss)
    if required is not None and output != required:
        raise ValueError(f"loss {loss!r} requires output_activation {required!r}, got {output!r}")
    if loss == "mse" and output == "softmax":
        raise ValueError("loss 'mse' does not allow a softmax output; use cross_entropy")


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
    of ``docs/article-errata.md`` is marked where it happens. Erratum 4 (the Rust does not compile:
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
            layer_inputs = _article_layer_forward(net.layers[len(layer.neurons) - 1], layer_inputs)


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
    return [([[v / n for v in row] for row in dW], [v / n for v in db]) for dW, db in total]


def _accuracy_score(loss, p, t):
    """The score of one sample with output row ``p`` and target ``t`` (a class index or a row),
    as ``ferrinet.training.accuracy`` counts it: cross_entropy 1.0 when the first largest output
    is the class (a row's first largest value), else 0.0; binary_cross_entropy the fraction of
    outputs with ``p >= 0.5`` equal to ``t >= 0.5``."""
    if loss == "cross_entropy":
        predicted = max(range(len(p)), key=p.__getitem__)
        true = max(range(len(t)), key=list(t).__getitem__) if isinstance(t, (list, tuple)) else t
        return 1.0 if predicted == int(true) else 0.0
    t = list(t) if isinstance(t, (list, tuple)) else [t]
    hits = _sum(1.0 if (p_i >= 0.5) == (t_i >= 0.5) else 0.0 for p_i, t_i in zip(p, t))
    return hits / len(p)
