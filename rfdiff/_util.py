"""Small shared helpers: local float64, input validation, chunking."""
from __future__ import annotations

import functools
import math
import zlib
import os
import sys
import warnings
from typing import Callable, Optional

import jax
import numpy as np


def x64(fn: Callable) -> Callable:
    """Run ``fn`` with float64 enabled locally (the user's global JAX setting is untouched)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    return wrapper


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def warn(message: str, category: type = RuntimeWarning) -> None:
    """``warnings.warn`` pointing at the first caller outside the rfdiff package (not at library internals)."""
    level, frame = 2, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def check_positive_int(name: str, value) -> int:
    """Return ``value`` as int, or raise ValueError naming ``name`` if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_positive(name: str, value) -> float:
    """Return ``value`` as float, or raise ValueError naming ``name`` if it is not a finite number > 0
    (strings and booleans are refused, not parsed)."""
    if isinstance(value, (str, bytes, bool)):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v


def check_fraction(name: str, value) -> float:
    """Return ``value`` as float, or raise ValueError naming ``name`` if it is not in the open interval (0, 1)."""
    v = check_positive(name, value)
    if v >= 1:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return v


def check_array(name: str, x, ndim: Optional[int] = None, shape: Optional[tuple] = None,
                allow_empty: bool = False) -> np.ndarray:
    """``x`` as a float64 numpy array, or a ValueError naming ``name``: not numeric, complex, non-finite,
    of the wrong number of dimensions or shape (``None`` entries of ``shape`` match anything), or empty."""
    try:
        arr = np.asarray(x)
    except Exception as err:  # noqa: BLE001 - anything numpy cannot read is a bad argument
        raise ValueError(f"{name} must be a numeric array, got {type(x).__name__} ({err})") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf" and arr.dtype.kind != "c":
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} must be real, got a complex array")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if shape is not None and (arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape))):
        want = "(" + ", ".join("·" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    return arr


def check_finite_array(name: str, x) -> np.ndarray:
    """Raise ValueError naming ``name`` if ``x`` is not a real, finite, non-empty numeric array (float64 copy-free)."""
    return check_array(name, x)


def check_symmetric(name: str, M, rtol: float = 1e-8) -> np.ndarray:
    """A square, symmetric (to ``rtol`` of its largest entry), real finite matrix; ValueError naming ``name`` otherwise."""
    M = check_array(name, M, ndim=2)
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} must be square, got shape {M.shape}")
    n = M.shape[0]
    if n * n <= 1 << 20:
        i, j = np.triu_indices(n, 1)
    else:   # large: a random sample of pairs (a non-symmetric input is almost never asymmetric in few entries)
        rng = np.random.default_rng(0)
        i, j = rng.integers(0, n, 1 << 18), rng.integers(0, n, 1 << 18)
    gap = float(np.max(np.abs(M[i, j] - M[j, i]))) if i.size else 0.0
    scale = float(np.max(np.abs(M.diagonal()))) if n else 0.0
    if gap > rtol * max(scale, float(np.max(np.abs(M[i, j]))) if i.size else 0.0):
        raise ValueError(f"{name} must be symmetric (max |M − Mᵀ| = {gap:.3g} over the entries checked)")
    return M


def check_points(name: str, x, d=None) -> np.ndarray:
    """Validate a finite, non-empty (count, d) array of points; ValueError naming ``name`` otherwise."""
    arr = check_array(name, x, ndim=2)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must contain at least one point of dimension ≥ 1, got shape {arr.shape}")
    if d is not None and arr.shape[1] != d:
        raise ValueError(f"{name} has dimension {arr.shape[1]}, expected d = {d}")
    return arr


def host_threads() -> int:
    """Threads this process may use on the host: the BLAS/OpenMP limit if one is set, else the core count."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        try:
            v = int(os.environ.get(var, ""))
        except ValueError:
            continue
        if v > 0:
            return v
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def row_chunks(n_rows: int, chunk: int):
    """Yield slices covering ``range(n_rows)`` in blocks of at most ``chunk`` rows."""
    for start in range(0, n_rows, chunk):
        yield slice(start, min(start + chunk, n_rows))


@functools.lru_cache(maxsize=64)
def gauss_hermite(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of Gauss–Hermite quadrature for the standard normal (weights sum to 1; read-only, cached)."""
    z, w = np.polynomial.hermite_e.hermegauss(order)
    w = w / math.sqrt(2.0 * math.pi)
    z.flags.writeable = False
    w.flags.writeable = False
    return z, w


def stream_key(seed, *names) -> jax.Array:
    """The PRNG key of one named stream of a seed: ``PRNGKey(seed)`` folded in with each name in turn.

    A string name folds in its CRC-32 (stable across runs and machines), an integer itself, so
    ``stream_key(seed, "fluctuations", j)`` and ``stream_key(seed, "training")`` are independent
    streams of the same seed and never another seed's root (docs/theory.md §1.4).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(int(seed))
        for name in names:
            if isinstance(name, str):
                key = jax.random.fold_in(key, zlib.crc32(name.encode()))
            elif isinstance(name, (int, np.integer)) and not isinstance(name, bool) and 0 <= int(name) < 2**32:
                key = jax.random.fold_in(key, int(name))
            else:
                raise ValueError(f"stream names must be strings or integers in [0, 2**32), got {name!r}")
        return key
