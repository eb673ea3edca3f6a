"""What counts as a *user error*, and the checks that raise it.

A user error is bad input that the user can fix by changing what they passed: a configuration
value out of range, an unknown name (split, method, tier, metric, parameter), a malformed data
file, a tokenizer that does not belong to the model. It is raised as :class:`InputError` (a
``ValueError``, so ``except ValueError`` keeps working) with a one-line message that names the
bad input: the field and its value, or the file, line and field. The ``satimp-lab`` command line
prints such an error on one line and exits with status 2 (``--debug`` shows the traceback); any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["InputError", "check_int", "check_real", "check_choice"]


class InputError(ValueError):
    """Bad user input (a config field, a name, a data file, a mismatched tokenizer).

    The message is one line and names the input and its value."""


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(owner: str, name: str, value, minimum: int | None = None, none_ok: bool = False) -> None:
    """Raise :class:`InputError` unless ``value`` is an integer >= ``minimum`` (or None when
    ``none_ok``). ``owner`` names the configuration (e.g. ``"UnlearnConfig"``)."""
    if value is None and none_ok:
        return
    if not _is_int(value) or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        extra = " or None" if none_ok else ""
        raise InputError(f"{owner}.{name} must be an integer{bound}{extra}, got {value!r}")


def check_real(owner: str, name: str, value, low: float | None = None, high: float | None = None,
               low_open: bool = False, none_ok: bool = False) -> None:
    """Raise :class:`InputError` unless ``value`` is a finite real number in the interval given by
    ``low`` / ``high`` (``low_open``: strictly above ``low``), or None when ``none_ok``."""
    if value is None and none_ok:
        return
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"<= {high:g}")
        extra = " or None" if none_ok else ""
        raise InputError(f"{owner}.{name} must be a finite number{' ' if bounds else ''}"
                         f"{' and '.join(bounds)}{extra}, got {value!r}")


def check_choice(owner: str, name: str, value, choices) -> None:
    """Raise :class:`InputError` unless ``value`` is one of ``choices``."""
    if value not in tuple(choices):
        raise InputError(f"{owner}.{name} must be one of {list(choices)}, got {value!r}")
