"""Optimizers for ``fit`` / ``train_epoch``: configuration only, with PyTorch's names and defaults.

Each class is a frozen dataclass that checks its arguments; it holds no state and does no maths.
The update itself runs in the Rust core (which reads ``to_dict()``) or in ``ferrinet.reference``
(the same maths in readable Python), per parameter element, as ``docs/maths.md`` writes it::

    net.fit(X, Y, optimizer=ferrinet.optim.Adam(lr=1e-3))
    net.fit(X, Y, optimizer="adam", learning_rate=1e-3, betas=(0.9, 0.99))   # the same object

In the formulas, p is a parameter, g its gradient (after L2 and clipping), t the number of steps
taken (from 1), and every buffer (b, v, ga, m, vmax) starts at 0.0 when training starts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Optional

from . import _registry, _validate

__all__ = ["OPTIMIZERS", "SGD", "Adam", "AdamW", "RMSprop", "make_optimizer"]


# --------------------------------------------------------------------------------------------
# Argument checks (ferrinet._validate); ``owner`` is the class name the message starts with
# --------------------------------------------------------------------------------------------
def _in_range(owner, name, value, low, high, low_open=False, high_open=False):
    """A finite real in the interval from ``low`` to ``high`` (None: no upper bound)."""
    return _validate.real(
        value, f"{owner}: {name}", low, high, low_open=low_open, high_open=high_open
    )


def _flag(owner, name, value):
    return _validate.flag(value, f"{owner}: {name}")


def _set(obj, name, value):
    # frozen dataclass: __post_init__ stores the normalised value this way
    object.__setattr__(obj, name, value)


def _lr(owner, value):
    return _in_range(owner, "lr", value, 0.0, None, low_open=True)


def _weight_decay(owner, value):
    return _in_range(owner, "weight_decay", value, 0.0, None)


def _eps(owner, value):
    return _in_range(owner, "eps", value, 0.0, None, low_open=True)


def _betas(owner, value):
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{owner}: betas must be a pair (beta1, beta2), got {value!r}")
    return tuple(
        _in_range(owner, f"betas[{i}]", beta, 0.0, 1.0, high_open=True)
        for i, beta in enumerate(value)
    )


# The flat dict ``to_dict`` returns: every optimizer's every field, 0 / False ("pytorch" for
# eps_placement) where unused, so that the Rust binding reads one shape whatever the optimizer.
_FLAT_DEFAULTS = {
    "lr": 0.0,
    "momentum": 0.0,
    "dampening": 0.0,
    "nesterov": False,
    "weight_decay": 0.0,
    "alpha": 0.0,
    "eps": 0.0,
    "centered": False,
    "beta1": 0.0,
    "beta2": 0.0,
    "amsgrad": False,
    "eps_placement": "pytorch",
}

# Where Adam adds eps (docs/maths.md): PyTorch's placement, or scikit-learn's.
EPS_PLACEMENTS = ("pytorch", "sklearn")


class _Optimizer:
    """What the four optimizers share: ``name``, ``to_dict``, ``options``."""

    if TYPE_CHECKING:  # every subclass is a dataclass: `fields(self)` is well-typed
        __dataclass_fields__: ClassVar[Dict[str, Any]]

    name = ""

    @classmethod
    def options(cls) -> List[str]:
        """The argument names, in order (the dataclass fields)."""
        return [f.name for f in fields(cls)]

    def to_dict(self) -> Dict[str, Any]:
        """A plain flat dict: ``name`` and every field of every optimizer (unused ones 0 / False);
        ``betas`` is given as ``beta1`` and ``beta2``."""
        flat = {"name": self.name, **_FLAT_DEFAULTS}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "betas":
                flat["beta1"], flat["beta2"] = value
            else:
                flat[f.name] = value
        return flat


@dataclass(frozen=True)
class SGD(_Optimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD`` (PyTorch 2.x docs)::

        if weight_decay != 0: g = g + weight_decay * p
        if momentum != 0:
            b = g                                     if t == 1
            b = momentum * b + (1 - dampening) * g    otherwise
            g = g + momentum * b  if nesterov  else  g = b
        p = p - lr * g

    Reference: https://pytorch.org/docs/stable/generated/torch.optim.SGD.html (lr defaults to
    1e-3 there since PyTorch 2.2; ``maximize`` is not offered). Nesterov momentum needs
    ``momentum > 0`` and ``dampening == 0``, PyTorch's rule.
    """

    lr: float = 1e-3
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    name = "sgd"

    def __post_init__(self):
        owner = "SGD"
        _set(self, "lr", _lr(owner, self.lr))
        _set(
            self,
            "momentum",
            _in_range(owner, "momentum", self.momentum, 0.0, 1.0, high_open=True),
        )
        _set(self, "dampening", _in_range(owner, "dampening", self.dampening, 0.0, 1.0))
        _set(self, "nesterov", _flag(owner, "nesterov", self.nesterov))
        _set(self, "weight_decay", _weight_decay(owner, self.weight_decay))
        if self.nesterov and (self.momentum <= 0.0 or self.dampening != 0.0):
            raise ValueError(
                "SGD: nesterov=True requires momentum > 0 and dampening == 0, "
                f"got momentum={self.momentum!r}, dampening={self.dampening!r}"
            )


@dataclass(frozen=True)
class RMSprop(_Optimizer):
    """RMSprop (Hinton's lecture 6e; centered: Graves 2013), as ``torch.optim.RMSprop``::

        if weight_decay != 0: g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * (g * g)
        if centered: ga = alpha * ga + (1 - alpha) * g;  avg = sqrt(v - ga * ga) + eps
        else:        avg = sqrt(v) + eps
        if momentum > 0: b = momentum * b + g / avg;  p = p - lr * b
        else:            p = p - lr * (g / avg)

    Reference: https://pytorch.org/docs/stable/generated/torch.optim.RMSprop.html
    """

    lr: float = 1e-2
    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    centered: bool = False

    name = "rmsprop"

    def __post_init__(self):
        owner = "RMSprop"
        _set(self, "lr", _lr(owner, self.lr))
        _set(
            self,
            "alpha",
            _in_range(owner, "alpha", self.alpha, 0.0, 1.0, high_open=True),
        )
        _set(self, "eps", _eps(owner, self.eps))
        _set(self, "weight_decay", _weight_decay(owner, self.weight_decay))
        _set(
            self,
            "momentum",
            _in_range(owner, "momentum", self.momentum, 0.0, 1.0, high_open=True),
        )
        _set(self, "centered", _flag(owner, "centered", self.centered))


def _check_adam(opt, owner):
    """Adam's and AdamW's arguments (the same ones, with different defaults)."""
    _set(opt, "lr", _lr(owner, opt.lr))
    _set(opt, "betas", _betas(owner, opt.betas))
    _set(opt, "eps", _eps(owner, opt.eps))
    _set(opt, "weight_decay", _weight_decay(owner, opt.weight_decay))
    _set(opt, "amsgrad", _flag(owner, "amsgrad", opt.amsgrad))
    placement = opt.eps_placement
    if not isinstance(placement, str) or placement not in EPS_PLACEMENTS:
        raise ValueError(
            f"{owner}: eps_placement must be 'pytorch' or 'sklearn', got {placement!r}"
        )


@dataclass(frozen=True)
class Adam(_Optimizer):
    """Adam (Kingma & Ba 2015; amsgrad: Reddi et al. 2018), as ``torch.optim.Adam``::

        if weight_decay != 0: g = g + weight_decay * p        (coupled: L2 through the gradient)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * (g * g)
        bc1 = 1 - beta1**t;  bc2 = 1 - beta2**t
        if amsgrad: vmax = max(vmax, v); vhat = vmax   else: vhat = v
        p = p - (lr / bc1) * m / (sqrt(vhat) * (1 / sqrt(bc2)) + eps)

    that is p - lr * m^ / (sqrt(v^) + eps) with m^ = m / bc1 and v^ = v / bc2, arranged as
    PyTorch arranges it (docs/maths.md has the operation order).

    ``eps_placement="sklearn"``: scikit-learn's Adam (``sklearn.neural_network``), which adds
    eps to the uncorrected sqrt(v) and folds both corrections into the step size (Kingma & Ba's
    Section 2 form; TensorFlow's "epsilon hat")::

        p = p - (lr * sqrt(bc2) / bc1) * m / (sqrt(vhat) + eps)

    The same as PyTorch's with eps replaced by eps * sqrt(bc2) (31.6 x smaller at step 1 with
    beta2 = 0.999, tending to eps); ``ferrinet.sklearn`` uses it to follow scikit-learn.

    Reference: https://pytorch.org/docs/stable/generated/torch.optim.Adam.html
    """

    lr: float = 1e-3
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = False
    eps_placement: str = "pytorch"

    name = "adam"

    def __post_init__(self):
        _check_adam(self, "Adam")


@dataclass(frozen=True)
class AdamW(_Optimizer):
    """AdamW (Loshchilov & Hutter 2019, decoupled weight decay), as ``torch.optim.AdamW``::

        p = p * (1 - lr * weight_decay)          (decoupled: not through the gradient)
        then Adam's update with weight_decay = 0

    Reference: https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html. The default
    ``weight_decay`` is 0.01, PyTorch's; it decays biases too, as PyTorch does.
    ``eps_placement``: as ``Adam``'s.
    """

    lr: float = 1e-3
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 1e-2
    amsgrad: bool = False
    eps_placement: str = "pytorch"

    name = "adamw"

    def __post_init__(self):
        _check_adam(self, "AdamW")


# name -> class, for make_optimizer
OPTIMIZERS = {cls.name: cls for cls in (SGD, RMSprop, Adam, AdamW)}


def make_optimizer(optimizer: Any, learning_rate: Optional[float] = None, **options: Any) -> Any:
    """An optimizer object from a name or an object.

    ``optimizer``: a name (case-insensitive: "sgd", "rmsprop", "adam", "adamw"), built with
    ``lr=learning_rate`` (when given) and ``options`` as its other arguments; or an optimizer
    object, returned as it is (then ``learning_rate`` and ``options`` must not be given: the
    object already says them). Unknown names raise ValueError, unknown options TypeError; both
    list the valid ones.
    """
    given = (["learning_rate"] if learning_rate is not None else []) + sorted(options)
    ready, cls = _registry.resolve("optimizer", optimizer, OPTIMIZERS, _Optimizer, given)
    if ready is not None:
        return ready
    _registry.check_options(cls, options)
    if learning_rate is not None:
        if "lr" in options:
            raise ValueError("give the learning rate once: learning_rate= or lr=, not both")
        options["lr"] = learning_rate
    return cls(**options)
