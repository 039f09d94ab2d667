"""Unit functions and configs for the sweep tests, importable by dask worker processes, and their checks.

Workers unpickle a unit function by reference (module + name), so these live at module level in a
module that the workers can import by the name ``sweep_units``: this folder (tests/helpers) is on
``sys.path`` through the pytest configuration (``pythonpath``), LocalCluster workers inherit
``sys.path`` from the test process, and ``dask worker`` subprocesses get the folder on ``PYTHONPATH``.
(tests/ itself must not go on sys.path: its rfdiff/ folder would shadow the package.)
"""
from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import jax
import numpy as np

from rfdiff import dynamics, matrices, model
from rfdiff.results import Curves


@dataclasses.dataclass(frozen=True)
class CurvesUnit:
    """A small but real RF problem: exact U, V and the train-loss curve of gradient flow."""

    d: int = 8
    p: int = 64
    n: int = 16
    t: float = 0.1
    seed: int = 0
    n_tau: int = 21


def curves_unit(u: CurvesUnit) -> Curves:
    """``train_matrices`` + ``exact_dynamics(...).curves(...)`` for one seed, on the library's own draw (float64)."""
    dr = model.draw(model.RFConfig(d=u.d, p=u.p, n=u.n, t=u.t, seed=u.seed))
    tm = matrices.train_matrices(dr.W, dr.X, u.t, tol=1e-8)
    c = dynamics.exact_dynamics(tm.U, tm.V, u.t).curves(np.logspace(-1, 5, u.n_tau))
    return dataclasses.replace(c, extra={"U_diag_head": np.asarray(tm.U).diagonal()[:4]}, method="exact (test unit)")


@dataclasses.dataclass(frozen=True)
class ToyUnit:
    """A toy: ``x²`` as a dict of a float and an array, or a ValueError when ``fail`` is set.

    The result also reports the thread-related environment variables of the process that ran it.
    """

    x: float
    fail: bool = False


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NPROC", "XLA_FLAGS")


def toy_unit(u: ToyUnit) -> dict:
    """``{"square": x², "powers": [1, x, x²], "env": {...}, "jax_dtype": ...}``; ``ValueError`` for ``fail=True``.

    ``jax_dtype`` is the dtype of a default JAX float array where the unit ran (float64 under x64).
    """
    if u.fail:
        raise ValueError(f"toy unit asked to fail at x={u.x}")
    env = {k: os.environ.get(k, "") for k in THREAD_VARS}
    return {"square": u.x * u.x, "powers": np.array([1.0, u.x, u.x * u.x]), "env": env,
            "jax_dtype": str(jax.numpy.zeros(()).dtype)}


@dataclasses.dataclass(frozen=True)
class Pair:
    """A result type of this module (registered with rfdiff.results only when first saved or loaded)."""

    x: float
    square: np.ndarray


def pair_unit(u: ToyUnit) -> Pair:
    """``Pair(x, x²)``."""
    return Pair(u.x, np.array(u.x * u.x))


@dataclasses.dataclass(frozen=True)
class KillOnceUnit:
    """Kills its own worker process (SIGKILL) the first time it runs; ``marker`` records that run."""

    marker: str
    x: float = 1.0


def kill_once_unit(u: KillOnceUnit) -> float:
    """SIGKILL this process if ``u.marker`` does not exist yet (creating it first); else return ``2x``.

    Only for dask workers: run serially it would kill the caller.
    """
    if not os.path.exists(u.marker):
        with open(u.marker, "w") as fh:
            fh.write(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return 2.0 * u.x


@dataclasses.dataclass(frozen=True)
class SleepUnit:
    """A toy that sleeps ``seconds`` and returns ``x`` (for interrupting a running sweep)."""

    x: int
    seconds: float = 0.0
    marker_dir: str = ""


def sleep_unit(u: SleepUnit) -> int:
    """Sleep, then leave a ``done_<x>`` marker in ``marker_dir`` (if given) and return ``u.x``."""
    import os
    import time

    time.sleep(u.seconds)
    if u.marker_dir:
        open(os.path.join(u.marker_dir, f"done_{u.x}"), "w").close()
    return u.x


@dataclasses.dataclass
class Mutable:
    """Not a valid unit (not frozen)."""

    x: int = 0


def assert_same(a, b):
    """Bit-identity of two results (Curves, dicts of floats/arrays, numbers)."""
    if isinstance(a, Curves):
        assert isinstance(b, Curves) and a.method == b.method
        da, db = a.as_dict(), b.as_dict()
        assert da.keys() == db.keys()
        for k in da:
            assert da[k].dtype == db[k].dtype == np.float64, k
            assert np.array_equal(da[k], db[k]), k
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    else:
        assert type(a) is type(b) and a == b


def no_temp_files(folder) -> bool:
    """No temporary file (``*.tmp``) anywhere under ``folder``."""
    return not [p for p in Path(folder).rglob("*") if p.name.endswith(".tmp")]
