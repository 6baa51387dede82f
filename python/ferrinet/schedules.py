"""Learning-rate schedules for ``fit``: the lr of each epoch e = 0, 1, ... (docs/maths.md).

A schedule object is configuration only (a frozen dataclass that checks its arguments).
``schedule.start(lr0)`` returns the running state: ``state.lr`` is the lr of the current epoch
(``lr0`` for epoch 0), and ``state.end_epoch(epoch, monitored_loss)``, called when epoch
``epoch`` has ended, sets ``state.lr`` to the lr of epoch ``epoch + 1`` and returns it::

    state = StepLR(step_size=10).start(0.1)
    for epoch in range(epochs):
        net.set_learning_rate(state.lr)
        loss = net.train_epoch(...)
        state.end_epoch(epoch, loss)

The first four are closed forms of e, evaluated exactly as written in docs/maths.md (``math.pow``
is C's ``pow``, ``math.cos`` C's ``cos``). ``ReduceLROnPlateau`` follows the monitored loss, as
PyTorch's (mode 'min', threshold_mode 'rel'). Names follow ``torch.optim.lr_scheduler``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List

from . import _registry, _validate

__all__ = [
    "SCHEDULES",
    "Constant",
    "CosineAnnealingLR",
    "ExponentialLR",
    "ReduceLROnPlateau",
    "StepLR",
    "make_schedule",
]


# --------------------------------------------------------------------------------------------
# Argument checks (ferrinet._validate); ``owner`` is the class name the message starts with
# --------------------------------------------------------------------------------------------
def _real(owner, name, value, low=None, high=None, low_open=False, high_open=False):
    return _validate.real(
        value, f"{owner}: {name}", low, high, low_open=low_open, high_open=high_open
    )


def _integer(owner, name, value, low):
    return _validate.integer(value, f"{owner}: {name}", low)


def _set(obj, name, value):
    object.__setattr__(obj, name, value)  # frozen dataclass: store the normalised value


def _start_lr(owner, lr0):
    lr0 = _real(owner, "lr0", lr0)
    if lr0 <= 0.0:
        raise ValueError(f"{owner}: the initial learning rate must be > 0, got {lr0!r}")
    return lr0


class _Schedule:
    if TYPE_CHECKING:  # every subclass is a dataclass: `fields(self)` is well-typed
        __dataclass_fields__: ClassVar[Dict[str, Any]]

    name = ""

    @classmethod
    def options(cls) -> List[str]:
        return [f.name for f in fields(cls)]

    def lr_at(self, lr0: float, epoch: int) -> float:
        """The closed form: the lr of epoch ``epoch`` (not for ReduceLROnPlateau)."""
        raise NotImplementedError

    def start(self, lr0: float) -> Any:
        """The running state of this schedule for a training run starting at ``lr0``."""
        return _ClosedFormState(self, _start_lr(type(self).__name__, lr0))

    def to_dict(self) -> Dict[str, Any]:
        """A plain flat dict: ``name`` and every schedule's every field (unused ones 0)."""
        flat = {"name": self.name, **_FLAT_DEFAULTS}
        flat.update({f.name: getattr(self, f.name) for f in fields(self)})
        return flat


class _ClosedFormState:
    """The state of a closed-form schedule: ``lr`` of the current epoch."""

    def __init__(self, schedule, lr0):
        self.schedule = schedule
        self.lr0 = lr0
        self.lr = schedule.lr_at(lr0, 0)

    def end_epoch(self, epoch, monitored_loss=None):
        """Epoch ``epoch`` ended: ``lr`` becomes that of epoch ``epoch + 1``; returns it."""
        self.lr = self.schedule.lr_at(self.lr0, _epoch_index(epoch) + 1)
        return self.lr

    def __repr__(self):
        return f"<{type(self.schedule).__name__} state: lr={self.lr!r}>"


def _epoch_index(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"epoch must be an integer >= 0, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------
# The schedules
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Constant(_Schedule):
    """``lr = lr0`` for every epoch."""

    name = "constant"

    def lr_at(self, lr0: float, epoch: int) -> float:
        return lr0


@dataclass(frozen=True)
class StepLR(_Schedule):
    """``lr = lr0 * gamma ** floor(e / step_size)``: times gamma every ``step_size`` epochs.

    Reference: ``torch.optim.lr_scheduler.StepLR`` (its closed form).
    """

    step_size: int
    gamma: float = 0.1

    name = "step"

    def __post_init__(self):
        _set(self, "step_size", _integer("StepLR", "step_size", self.step_size, 1))
        _set(self, "gamma", _real("StepLR", "gamma", self.gamma, 0.0, 1.0, low_open=True))

    def lr_at(self, lr0: float, epoch: int) -> float:
        return lr0 * math.pow(self.gamma, math.floor(epoch / self.step_size))


@dataclass(frozen=True)
class ExponentialLR(_Schedule):
    """``lr = lr0 * gamma ** e``. Reference: ``torch.optim.lr_scheduler.ExponentialLR``."""

    gamma: float

    name = "exponential"

    def __post_init__(self):
        _set(self, "gamma", _real("ExponentialLR", "gamma", self.gamma, 0.0, 1.0, low_open=True))

    def lr_at(self, lr0: float, epoch: int) -> float:
        return lr0 * math.pow(self.gamma, epoch)


@dataclass(frozen=True)
class CosineAnnealingLR(_Schedule):
    """``lr = eta_min + (lr0 - eta_min) * (1 + cos(pi * e / T_max)) / 2`` (SGDR without restarts,
    Loshchilov & Hutter 2017): lr0 at e = 0 down to eta_min at e = T_max. Past T_max the formula
    goes on (back up towards lr0 at 2 T_max), as PyTorch's closed form does.

    Reference: ``torch.optim.lr_scheduler.CosineAnnealingLR``.
    """

    T_max: int
    eta_min: float = 0.0

    name = "cosine"

    def __post_init__(self):
        _set(self, "T_max", _integer("CosineAnnealingLR", "T_max", self.T_max, 1))
        _set(
            self,
            "eta_min",
            _real("CosineAnnealingLR", "eta_min", self.eta_min, low=0.0),
        )

    def lr_at(self, lr0: float, epoch: int) -> float:
        eta_min = self.eta_min
        return eta_min + (lr0 - eta_min) * (1.0 + math.cos(math.pi * epoch / self.T_max)) / 2.0


@dataclass(frozen=True)
class ReduceLROnPlateau(_Schedule):
    """Multiply lr by ``factor`` when the monitored loss stops improving, as
    ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (mode 'min', threshold_mode 'rel', no eps).

    After each epoch, with x the monitored loss (validation loss when there is validation data,
    else the training loss)::

        if x < best * (1 - threshold): best = x; bad = 0        (best starts at +inf)
        else:                          bad = bad + 1
        if cooldown_counter > 0: cooldown_counter -= 1; bad = 0
        if bad > patience: lr = max(lr * factor, min_lr); cooldown_counter = cooldown; bad = 0

    So with patience p the lr drops at the end of the (p+1)-th epoch in a row without
    improvement, and after a drop ``cooldown`` epochs are ignored.
    """

    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    cooldown: int = 0
    min_lr: float = 0.0

    name = "reduce_on_plateau"

    def __post_init__(self):
        owner = "ReduceLROnPlateau"
        _set(self, "factor", _real(owner, "factor", self.factor, 0.0, 1.0, True, True))
        _set(self, "patience", _integer(owner, "patience", self.patience, 0))
        _set(self, "threshold", _real(owner, "threshold", self.threshold, 0.0, 1.0, False, True))
        _set(self, "cooldown", _integer(owner, "cooldown", self.cooldown, 0))
        _set(self, "min_lr", _real(owner, "min_lr", self.min_lr, low=0.0))

    def start(self, lr0: float) -> Any:
        return _PlateauState(self, _start_lr("ReduceLROnPlateau", lr0))


class _PlateauState:
    """The state of ReduceLROnPlateau: ``lr``, ``best``, ``bad`` (epochs without improvement in
    a row), ``cooldown_counter``."""

    def __init__(self, schedule, lr0):
        self.schedule = schedule
        self.lr = lr0
        self.best = math.inf
        self.bad = 0
        self.cooldown_counter = 0

    def end_epoch(self, epoch, monitored_loss):
        s = self.schedule
        if isinstance(monitored_loss, bool) or not isinstance(monitored_loss, numbers.Real):
            raise TypeError(
                f"ReduceLROnPlateau needs the monitored loss, a number; got {monitored_loss!r}"
            )
        x = float(monitored_loss)
        if x < self.best * (1.0 - s.threshold):  # NaN never improves
            self.best = x
            self.bad = 0
        else:
            self.bad += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.bad = 0
        if self.bad > s.patience:
            self.lr = max(self.lr * s.factor, s.min_lr)
            self.cooldown_counter = s.cooldown
            self.bad = 0
        return self.lr

    def __repr__(self):
        return (
            f"<ReduceLROnPlateau state: lr={self.lr!r}, best={self.best!r}, bad={self.bad}, "
            f"cooldown_counter={self.cooldown_counter}>"
        )


SCHEDULES = {
    cls.name: cls for cls in (Constant, StepLR, ExponentialLR, CosineAnnealingLR, ReduceLROnPlateau)
}

# every schedule's every field, for the flat to_dict the Rust binding reads
_FLAT_DEFAULTS = {
    "step_size": 0,
    "gamma": 0.0,
    "T_max": 0,
    "eta_min": 0.0,
    "factor": 0.0,
    "patience": 0,
    "threshold": 0.0,
    "cooldown": 0,
    "min_lr": 0.0,
}


def make_schedule(schedule: Any = None, **options: Any) -> Any:
    """A schedule object from a name or an object.

    ``schedule``: None (constant), a name ("constant", "step", "exponential", "cosine",
    "reduce_on_plateau", case-insensitive) built with ``options`` as its arguments, or a schedule
    object, returned as it is (then no options may be given). Unknown names raise ValueError,
    unknown options TypeError; both list the valid ones.
    """
    if schedule is None:
        schedule = "constant"
    ready, cls = _registry.resolve("schedule", schedule, SCHEDULES, _Schedule, sorted(options))
    if ready is not None:
        return ready
    _registry.check_options(cls, options)
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in options
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        example = ", ".join(
            f"{f.name}=..." if f.name in missing else f"{f.name}={f.default!r}"
            for f in dataclasses.fields(cls)
        )
        raise TypeError(
            f"schedule {cls.name!r} needs {' and '.join(missing)}: give it as "
            f"ferrinet.schedules.{cls.__name__}({example}) (fit(schedule={cls.name!r}) alone "
            "picks it from the call's epochs)"
        )
    return cls(**options)


def for_fit(schedule, epochs: int):
    """The schedule ``fit(schedule=..., epochs=epochs)`` runs: an object as it is; a name with
    defaults that span the call's ``epochs`` E, each ending near lr0 / 100:

    - ``"step"``: ``StepLR(step_size=max(1, E // 3), gamma=0.1)`` (two drops by 10 over E);
    - ``"exponential"``: ``ExponentialLR(gamma=0.01 ** (1 / (E - 1)))`` (lr0 / 100 in the last
      epoch; gamma 0.01 for E = 1... 2);
    - ``"cosine"``: ``CosineAnnealingLR(T_max=E)`` (lr0 down to 0 at the end of the call);
    - other names: their own defaults.

    For a schedule that spans several calls (``warm_start``), pass an object."""
    if isinstance(schedule, str):
        name = schedule.lower()
        if name == "step":
            return StepLR(step_size=max(1, epochs // 3), gamma=0.1)
        if name == "exponential":
            return ExponentialLR(gamma=0.01 ** (1.0 / max(1, epochs - 1)))
        if name == "cosine":
            return CosineAnnealingLR(T_max=epochs)
    return make_schedule(schedule)
