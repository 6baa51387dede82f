"""The argument checks the package shares: one definition of "a finite real in a range",
"an integer >= low", "True or False", "one of these names", the L2 penalty and the seed.

Every check returns the value normalised (a Python int, float or bool) or raises: TypeError for
the wrong kind of value, ValueError for a value out of range; both messages say what was
expected and what was given, in one wording across the package::

    lr must be a finite number in (0, inf), got 0.0
    lr must be finite, got nan; expected a finite number in (0, inf)
    step_size must be an integer >= 1, got 2.5 (float)

``what`` names the argument as the message should (e.g. ``"SGD: lr"``, ``"dropout[1]"``).
Pure Python (numpy scalars are accepted through their ``.item()``), so that the optimizers,
schedules and datasets load without the Rust extension. ``reference.py`` keeps its own plain
checks: it must stand alone.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence

__all__ = [
    "MAX_COUNT",
    "choice",
    "describe",
    "flag",
    "integer",
    "interval",
    "is_integer",
    "l2_penalty",
    "plain",
    "real",
    "seed",
]


def plain(value: Any) -> Any:
    """A numpy scalar (or 0-d array) as a Python number; anything else unchanged."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    return value


def is_integer(value: Any) -> bool:
    """An integer that is not a bool (numpy integers count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def describe(value: Any) -> str:
    """What was given, for a TypeError: its repr (cut at 60 characters) and its type."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def interval(
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_open: bool = False,
    high_open: bool = False,
) -> str:
    """The interval as a message writes it: ``[0, 1)``, ``(0, inf)``; None is unbounded."""
    left = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
    right = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
    return f"{left}, {right}"


#: The largest count (epochs, batch size, ...) an option may take: what the core's 64-bit
#: counters hold. More is a ValueError before anything changes (a batch larger than the data is
#: the whole data; more epochs would never end).
MAX_COUNT = 2**63 - 1


def integer(value: Any, what: str, low: Optional[int] = None, high: Optional[int] = None) -> int:
    """An integer (not a bool) >= ``low`` and <= ``high`` (when given), as a Python int."""
    value = plain(value)
    bound = "" if low is None else f" >= {low}"
    if not is_integer(value):
        raise TypeError(f"{what} must be an integer{bound}, got {describe(value)}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{what} must be an integer{bound}, got {value}")
    if high is not None and value > high:
        shown = "2**63 - 1" if high == MAX_COUNT else str(high)
        raise ValueError(f"{what} must be an integer in [{low}, {shown}], got {value}")
    return value


def real(
    value: Any,
    what: str,
    low: Optional[float] = None,
    high: Optional[float] = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number (not a bool) as a float, in the interval from ``low`` to ``high``
    (None: unbounded; ``low_open`` / ``high_open``: the bound itself is excluded)."""
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a real number, got {describe(value)}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    bounded = low is not None or high is not None
    where = interval(low, high, low_open, high_open)
    if not math.isfinite(value):
        expected = f"; expected a finite number in {where}" if bounded else ""
        raise ValueError(f"{what} must be finite, got {value!r}{expected}")
    if too_low or too_high:
        raise ValueError(f"{what} must be a finite number in {where}, got {value!r}")
    return value


def l2_penalty(value: Any, what: str = "l2") -> float:
    """The L2 penalty (weight decay through the loss): a finite real >= 0."""
    return real(value, what, low=0.0)


def flag(value: Any, what: str) -> bool:
    """True or False (numpy's bool too); no other value stands for one."""
    value = plain(value)
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return value


def choice(value: Any, what: str, options: Sequence[str]) -> str:
    """One of the names ``options`` (exactly: a str, case and all)."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def seed(value: Any) -> Optional[int]:
    """A training seed: None (a random one) or an integer in [0, 2**64)."""
    if value is None:
        return None
    value = plain(value)
    if not is_integer(value):
        raise TypeError(f"seed must be an integer in [0, 2**64) or None, got {describe(value)}")
    value = int(value)
    if not 0 <= value < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {value}")
    return value
