"""The validators of every pipeline's units and presets: one ValueError naming the parameter, before any computation.

Built on the library's own checks (:mod:`rfdiff._util`); booleans and strings are refused, not parsed.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .._util import check_positive
from ..activations import get_activation

SEED_MAX = 2**63 - 1
"""Largest seed a PRNG key takes (:func:`rfdiff._util.stream_key`)."""


def integer(name: str, value, minimum: int = 1, maximum: float = math.inf) -> int:
    """``value`` as int if it is an integer in [minimum, maximum]; else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not minimum <= value <= maximum:
        upper = "" if math.isinf(maximum) else f" and <= {maximum:g}"
        raise ValueError(f"{name} must be an integer >= {minimum}{upper}, got {value!r}")
    return int(value)


def seed(value, name: str = "seed") -> int:
    """A seed: an integer in [0, :data:`SEED_MAX`]."""
    return integer(name, value, 0, SEED_MAX)


def number(name: str, value, cast=float, minimum: float = 0.0, strict: bool = True, shown=None):
    """``value`` as ``cast`` (int or float) if finite and above ``minimum`` (``strict``: >, else >=); else ValueError."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)
    if ok and cast is int:
        ok = float(value) == int(value)
    if not ok or (value <= minimum if strict else value < minimum):
        what = "integer" if cast is int else "number"
        kind = f"a finite {what}" if shown is None else f"made of finite {what}s"
        raise ValueError(f"{name} must be {kind} {'>' if strict else '>='} {minimum:g}, "
                         f"got {value if shown is None else shown!r}")
    return cast(value)


def positive(name: str, value, upper: float = math.inf) -> float:
    """A finite number > 0 (and < ``upper``)."""
    v = check_positive(name, value)
    if v >= upper:
        raise ValueError(f"{name} must be < {upper:g}, got {value!r}")
    return v


def sequence(name: str, values, check: Callable) -> tuple:
    """A non-empty tuple of ``check(name, v)`` over ``values``."""
    try:
        vals = tuple(values)
    except TypeError:
        raise ValueError(f"{name} must be a non-empty sequence, got {values!r}") from None
    if not vals:
        raise ValueError(f"{name} must be a non-empty sequence, got {values!r}")
    return tuple(check(name, v) for v in vals)


def activation_name(value, name: str = "activation") -> str:
    """A registered activation name (units hold names, so that they hash into cache keys)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be the name of a registered activation, got {value!r}")
    get_activation(value)
    return value


def ascending(name: str, values, allow_inf_last: bool = False) -> tuple:
    """Positive, finite, strictly increasing floats (``inf`` allowed only last, when ``allow_inf_last``)."""
    try:
        v = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}") from None
    fin = v[:-1] if allow_inf_last and v.size and v[-1] == np.inf else v
    if v.size == 0 or fin.size == 0 or not np.all(np.isfinite(fin)) or np.any(fin <= 0) or np.any(np.diff(fin) <= 0):
        extra = " (the last may be inf)" if allow_inf_last else ""
        raise ValueError(f"{name} must be positive, finite{extra} and strictly increasing, got {values!r}")
    return tuple(float(x) for x in v)


def size(ratio: float, d: int) -> int:
    """The integer size (p or n) of a ratio ψ = p/d or n/d at dimension d: round(ψ d)."""
    return int(round(ratio * d))
