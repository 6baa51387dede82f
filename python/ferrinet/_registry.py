"""Building a configuration object from a name or taking it as given: what `make_optimizer`
and `make_schedule` share, so both say the same things about the same mistakes."""

from __future__ import annotations


def resolve(kind: str, value, registry: dict, base: type, given: list[str]):
    """(object, None) when `value` is already an instance of `base` (then nothing else may be
    `given`), or (None, class) for a name in `registry` (case-insensitive)."""
    article = "an" if kind[0] in "aeiou" else "a"
    if isinstance(value, base):
        if given:
            raise ValueError(
                f"{kind} {value!r} is already configured; give either {article} {kind} object "
                f"or a name with options, not both (also given: {', '.join(given)})"
            )
        return value, None
    if not isinstance(value, str):
        raise TypeError(
            f"{kind} must be a name (one of {', '.join(registry)}) or {article} {kind} object, "
            f"got {value!r}"
        )
    cls = registry.get(value.lower())
    if cls is None:
        raise ValueError(f"unknown {kind} {value!r}; valid: {', '.join(registry)}")
    return None, cls


def check_options(cls, options) -> None:
    """TypeError naming an option `cls` does not take, with the ones it does."""
    valid = cls.options()
    for option in options:
        if option not in valid:
            raise TypeError(
                f"{cls.__name__} has no option {option!r}; valid: {', '.join(valid) or '(none)'}"
            )
