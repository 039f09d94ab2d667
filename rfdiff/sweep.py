"""Run independent units on any ``distributed.Client`` (or serially) through a :class:`~rfdiff.cache.Cache`.

A unit is a frozen dataclass; ``fn(unit)`` a pure module-level function whose result
:func:`rfdiff.results.save` can write. Each distinct unit is one Dask task; cached ones are loaded.
The worker runs ``fn`` under ``jax.enable_x64`` (no global JAX setting changes), writes the entry
(every worker must reach the cache folder) and returns the result. An exception of ``fn`` becomes
a :class:`UnitFailure` (config and traceback; never retried or cached) while the others finish; a
lost worker's units are resubmitted by the scheduler (``distributed.scheduler.allowed-failures``),
then reported. Ctrl-C cancels what is outstanding; entries being atomic, a rerun resumes.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import traceback as _traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Optional

import jax

from .cache import CACHE_VERSION, Cache, read_manifest, unit_key  # noqa: F401  (re-exported)
from .results import CorruptResult

__all__ = ["Cache", "UnitFailure", "SweepReport", "SweepError", "run_sweep", "unit_key", "read_manifest"]


@dataclasses.dataclass(frozen=True)
class UnitFailure:
    """A unit without a result: its position in ``units``, the sweep's kind, its config, ``"Type: message"``
    and the traceback from where it ran."""

    index: int
    kind: str
    unit: Any
    error: str
    traceback: str


class SweepError(RuntimeError):
    """Raised by :meth:`SweepReport.raise_on_failure` when some units failed."""


@dataclasses.dataclass(frozen=True)
class SweepReport:
    """What a sweep produced, aligned with its ``units``: ``results`` (None where a unit failed), the
    ``failures``, the numbers computed (successfully) and loaded, the wall time, each unit's seconds
    in ``fn`` (None when loaded), the cache ``kind`` and ``keys``, the ``backend`` (``"serial"``,
    the scheduler's address, or ``"cache"`` when nothing ran), the workers at the start, and the
    ``(index, message)`` warnings units raised (also recorded in their cache entries)."""

    results: list
    failures: list[UnitFailure]
    n_computed: int
    n_loaded: int
    wall_s: float
    runtimes: list[Optional[float]]
    kind: str = ""
    keys: list[str] = dataclasses.field(default_factory=list)
    backend: str = "serial"
    n_workers: int = 0
    warnings: list = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every unit has a result."""
        return not self.failures

    def raise_on_failure(self) -> "SweepReport":
        """Raise :class:`SweepError` naming the failed units (the first one's config and traceback); else return self."""
        if not self.failures:
            return self
        first, others = self.failures[0], ", ".join(str(f.index) for f in self.failures[1:])
        raise SweepError(f"{len(self.failures)} of {len(self.results)} units of {self.kind!r} failed; "
                         f"units[{first.index}] = {first.unit!r}: {first.error}"
                         + (f" (also units {others})" if others else "") + f"\n{first.traceback}")


@dataclasses.dataclass(frozen=True)
class _Outcome:
    """What the worker-side wrapper returns for one unit."""

    ok: bool
    result: Any = None
    runtime_s: Optional[float] = None
    error: str = ""
    traceback: str = ""
    warnings: tuple = ()


def _run_unit(fn: Callable, unit, cache: Cache, key: str) -> _Outcome:
    """Run ``fn(unit)`` in float64, write its cache entry, and return the result or a failure record."""
    try:
        from distributed import get_worker
        worker = get_worker().address
    except (ImportError, ValueError):
        worker = "serial"
    t0 = time.perf_counter()
    try:
        with jax.enable_x64(True), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn(unit)
        runtime = time.perf_counter() - t0
        said = tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
        cache.save(key, unit, result, runtime, worker, said)
        return _Outcome(True, result, runtime, warnings=said)
    except Exception as err:  # reported to the client with its traceback, never retried
        return _Outcome(False, None, time.perf_counter() - t0, f"{type(err).__name__}: {err}", _traceback.format_exc())


def _check_inputs(fn, units, cache, client, progress) -> list:
    if not isinstance(units, Sequence) or isinstance(units, (str, bytes)):
        raise ValueError(f"units must be a sequence of frozen dataclass instances, got {type(units).__name__}")
    for i, u in enumerate(units):
        if not dataclasses.is_dataclass(u) or isinstance(u, type) or not type(u).__dataclass_params__.frozen:
            raise ValueError(f"units must hold frozen dataclass instances; units[{i}] is {type(u).__name__}")
    for name, value, ok, want in (
            ("fn", fn, callable(fn), "callable"), ("cache", cache, isinstance(cache, Cache), "a rfdiff.cache.Cache"),
            ("client", client, not isinstance(client, (str, bytes, os.PathLike)), "a distributed.Client or None"),
            ("progress", progress, progress is None or callable(progress), "callable or None")):
        if not ok:
            raise ValueError(f"{name} must be {want}, got {value!r}")
    return list(units)


def run_sweep(fn: Callable, units: Sequence, *, cache: Cache, client=None,
              progress: Optional[Callable[[int, int], Any]] = None) -> SweepReport:
    """Run ``fn(unit)`` for every unit through ``cache``, on ``client``'s workers or serially.

    Args:
        fn: module-level ``fn(unit) -> result`` (importable by the workers).
        units: sequence of frozen dataclass instances.
        cache: a :class:`rfdiff.cache.Cache` (its ``kind`` defaults to ``fn``'s name).
        client: a ``distributed.Client``, used only if some unit is not cached; None: this process.
        progress: called as ``progress(done, total)`` after each unit, loaded or computed.

    Returns a :class:`SweepReport`; raises ValueError naming a bad argument before any work.
    """
    t_start = time.perf_counter()
    units = _check_inputs(fn, units, cache, client, progress)
    cache = cache.for_fn(fn)
    keys = []
    for i, u in enumerate(units):
        try:
            keys.append(unit_key(cache.kind, u))
        except ValueError as err:
            raise ValueError(f"units[{i}] cannot be hashed into a cache key: {err}") from None
    total, results, runtimes = len(units), [None] * len(units), [None] * len(units)
    failures, said, count = [], [], {"done": 0, "computed": 0, "loaded": 0}
    todo: dict[str, list[int]] = {}  # key -> indices of the units to compute with that key

    def tick(n: int, what: str = "") -> None:
        count["done"] += n
        count[what] = count.get(what, 0) + n
        if progress is not None:
            progress(count["done"], total)

    loaded: dict[str, Any] = {}
    for i, key in enumerate(keys):
        if key not in todo and key not in loaded:
            with contextlib.suppress(CorruptResult):  # absent, damaged or misfiled: computed again
                loaded[key] = cache.load(key)
        if key in loaded:
            results[i] = loaded[key]
            tick(1, "loaded")
        else:
            todo.setdefault(key, []).append(i)

    def record(key: str, out: _Outcome) -> None:
        said.extend((todo[key][0], w) for w in out.warnings)
        for j in todo[key]:
            runtimes[j], results[j] = out.runtime_s, out.result
            if not out.ok:
                failures.append(UnitFailure(j, cache.kind, units[j], out.error, out.traceback))
        tick(len(todo[key]), "computed" if out.ok else "")

    backend, n_workers = ("serial", 1) if todo else ("cache", 0)
    if todo and client is None:
        for key, idx in todo.items():
            record(key, _run_unit(fn, units[idx[0]], cache, key))
    elif todo:
        backend, n_workers = str(getattr(client.scheduler, "address", "dask")), len(client.nthreads())
        _run_on_dask(client, fn, cache, {key: units[idx[0]] for key, idx in todo.items()}, record)
    return SweepReport(results, sorted(failures, key=lambda f: f.index), count["computed"], count["loaded"],
                       time.perf_counter() - t_start, runtimes, cache.kind, keys, backend, n_workers, sorted(said))


_POLL_S = 0.05
"""How often the sweep looks for finished Dask tasks: it polls rather than blocks in a lock wait, which a
``_thread.interrupt_main`` from the no-workers watchdog cannot interrupt."""


def _run_on_dask(client, fn: Callable, cache: Cache, tasks: dict, record: Callable) -> None:
    """One task per key, each outcome to ``record`` as it completes; on any interruption cancel the rest, re-raise."""
    from distributed import as_completed
    from distributed.client import FutureCancelledError

    token = os.urandom(4).hex()  # two sweeps of the same units never share (or cancel) a task
    futures = {}
    try:
        for key, unit in tasks.items():
            fut = client.submit(_run_unit, fn, unit, cache, key, key=f"rfdiff-sweep-{cache.kind}-{key}-{token}",
                                pure=False, retries=0)
            futures[fut] = key
        pending = as_completed(list(futures), loop=client.loop)
        while not pending.is_empty():
            batch = pending.next_batch(block=False)
            if not batch:       # poll, never block: a watchdog's interrupt (or Ctrl-C) is then always seen
                time.sleep(_POLL_S)
                continue
            for fut in batch:
                key = futures.pop(fut)
                try:
                    out = fut.result()
                except (Exception, FutureCancelledError) as err:  # KilledWorker, fn not importable, cancelled
                    out = _Outcome(False, None, None, f"{type(err).__name__}: {err}",
                                   "".join(_traceback.format_exception(err)))
                fut.release()
                record(key, out)
    except BaseException:
        if futures:
            client.cancel(list(futures), force=True)
        raise
