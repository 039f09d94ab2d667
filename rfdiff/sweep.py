"""Run a list of independent units on ``dask.distributed`` (or serially) with a persistent cache.

Design
------
*One unit = one call.* A unit is a frozen dataclass config; ``fn(unit)`` is a pure, module-level
library function whose result :func:`rfdiff.results.save` can write (Curves, Spectrum,
Timescales, any frozen dataclass, numbers, strings, arrays, lists, dicts). Each unit is one dask
task: no batching, no shared state, so any unit can run on any worker, in any order, or again.

*Cache keys.* :func:`unit_key` hashes (SHA-256) the canonical JSON of the unit's full config
(every field, the seed included, nested dataclasses and tuples kept apart from lists, arrays by
dtype, shape and bytes), its type name, the ``kind`` and :data:`CACHE_VERSION`. A result lives in
``<cache_dir>/<kind>/<key>.json`` + ``.npz``, written by :func:`rfdiff.results.save` (NPZ first,
each file through a temporary file and a rename, so a reader never sees half an entry). The
worker writes the entry itself and then returns the result, so ``cache_dir`` must be reachable by
every worker (a shared file system on a real cluster). Units found in the cache are loaded and
not submitted; an entry that fails to load (:class:`rfdiff.results.CorruptResult`: truncated,
edited, missing half) is recomputed; ``recompute=True`` ignores the cache. Failures are never
cached. Equal configs within one sweep are computed once. The key does not include the code's
version (only ``meta`` records it): bump :data:`CACHE_VERSION` when a change of the library
changes results. A cached result of a dataclass type that this process has not registered with
:mod:`rfdiff.results` yet is loaded after importing its module by name.

*Manifest.* The JSON of each entry carries ``meta`` (kind, key, unit config, runtime, worker,
host, pid, rfdiff version, finish time): one small file per finished unit, written atomically,
so sweeps running at the same time cannot corrupt it (two writers of one key write the same
deterministic result). :func:`read_manifest` assembles these files on read.

*Failures and retries.* The worker-side wrapper catches any ``Exception`` of ``fn`` (or of
saving its result) and returns a failure record with the config and traceback: a deterministic
error is reported once, never retried, and the other units finish. A lost worker (process killed,
out of memory) is different: the scheduler resubmits its units to another worker, up to
``distributed.scheduler.allowed-failures`` times (default 3); past that the unit is reported as a
failure (``KilledWorker``). A LocalCluster runs worker processes under nannies, so a killed worker
is restarted. Ctrl-C (or an exception from ``progress``) cancels the outstanding futures, closes
the LocalCluster and is re-raised; cache writes being atomic, nothing partial is left.

*Threads.* Each dask worker runs one unit at a time (dask ``nthreads=1``); ``threads_per_worker``
is the number of BLAS/XLA threads that unit may use. For a LocalCluster this is enforced through
environment variables: ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` are
set before the worker process is spawned (OpenBLAS reads them when numpy is imported, which
happens while the worker unpickles its start-up code); ``NPROC`` sizes XLA's CPU thread pool (read
when the JAX backend starts; measured with jaxlib 0.10: ``--xla_cpu_multi_thread_eigen=false``
alone does not stop XLA's multi-threaded dot, and ``intra_op_parallelism_threads`` is not an XLA
flag) and, for one thread, ``XLA_FLAGS`` gains ``--xla_cpu_multi_thread_eigen=false``. The
client's own environment is restored once the cluster is up and again when it is closed (a nanny
that restarts a worker re-exports the BLAS variables meanwhile). Workers of an existing scheduler
are started by someone else, who sets these variables (``dask worker --nthreads 1``).

*Precision.* The wrapper runs ``fn`` inside ``jax.enable_x64(True)`` (workers start with JAX's
default float32); the client's global JAX setting is never changed. Results are bit-identical
between serial and dask runs when both use the same BLAS/XLA thread counts; a multi-threaded
client against single-threaded workers may differ in the last bits (measured: 1e-14 relative on
curves at p = 2048, from the threaded eigendecomposition and products).

The library never prints: progress goes through ``progress(done, total)``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import importlib
import json
import os
import re
import socket
import tempfile
import time
import traceback as _traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import jax
import numpy as np

from . import results as _results

__all__ = ["CACHE_VERSION", "SCHEDULER_ENV", "Cluster", "UnitFailure", "SweepReport", "SweepError",
           "run_sweep", "unit_key", "read_manifest"]

CACHE_VERSION = 1
"""Part of every cache key: bump it when results of unchanged configs change."""

SCHEDULER_ENV = "RFDIFF_SCHEDULER"
"""Environment variable naming a dask scheduler address, used when ``Cluster.scheduler`` is None."""

_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_PROTOCOLS = ("tcp", "tls", "ws", "wss", "ucx")
_ADDRESS = re.compile(r"^(?:(?P<proto>[a-z]+)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>\d+))?$")
_KIND = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


# ----------------------------------------------------------------------------------------------
# configuration and results


def _check_address(name: str, address) -> str:
    """Return a dask scheduler address, or raise ValueError naming ``name``."""
    m = _ADDRESS.match(address) if isinstance(address, str) else None
    ok = m is not None and (m["proto"] or "tcp") in _PROTOCOLS and \
        (m["port"] is None or 0 < int(m["port"]) < 65536)
    if not ok:
        raise ValueError(f"{name} must be a dask scheduler address such as 'tcp://host:8786', got {address!r}")
    return address


def _check_count(name: str, value, allow_none: bool = False) -> Optional[int]:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class Cluster:
    """Where and how a sweep runs.

    Attributes:
        scheduler: address of an existing dask scheduler (``"tcp://host:8786"``). None: the
            address in the environment variable ``RFDIFF_SCHEDULER`` if set, else a LocalCluster
            started and stopped by the sweep.
        n_workers: LocalCluster size; None: ``max(1, os.cpu_count() // threads_per_worker)``.
        threads_per_worker: BLAS/XLA threads of each worker process (each runs one unit at a
            time); enforced through environment variables for LocalCluster workers.
        serial: run every unit in this process, without dask (debugging, and the reference
            for bit-identity).
    """

    scheduler: Optional[str] = None
    n_workers: Optional[int] = None
    threads_per_worker: int = 1
    serial: bool = False

    def __post_init__(self):
        if self.scheduler is not None:
            _check_address("scheduler", self.scheduler)
        object.__setattr__(self, "n_workers", _check_count("n_workers", self.n_workers, allow_none=True))
        object.__setattr__(self, "threads_per_worker", _check_count("threads_per_worker", self.threads_per_worker))
        if not isinstance(self.serial, (bool, np.bool_)):
            raise ValueError(f"serial must be a bool, got {self.serial!r}")
        object.__setattr__(self, "serial", bool(self.serial))

    def resolved_scheduler(self) -> Optional[str]:
        """The scheduler address to connect to (``scheduler``, else ``$RFDIFF_SCHEDULER``), or None."""
        if self.serial:
            return None
        if self.scheduler is not None:
            return self.scheduler
        env = os.environ.get(SCHEDULER_ENV, "").strip()
        return _check_address(SCHEDULER_ENV, env) if env else None

    def local_size(self) -> int:
        """Number of LocalCluster worker processes."""
        if self.n_workers is not None:
            return self.n_workers
        return max(1, (os.cpu_count() or 1) // self.threads_per_worker)

    def worker_env(self) -> dict[str, str]:
        """Environment variables that hold a LocalCluster worker to ``threads_per_worker`` threads."""
        n = str(self.threads_per_worker)
        env = {k: n for k in _BLAS_VARS}
        env["NPROC"] = n  # XLA's CPU thread pool (tsl MaxParallelism), read when the backend starts
        flags = os.environ.get("XLA_FLAGS", "")
        if self.threads_per_worker == 1 and "xla_cpu_multi_thread_eigen" not in flags:
            flags = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
        if flags:
            env["XLA_FLAGS"] = flags
        return env


@dataclasses.dataclass(frozen=True)
class UnitFailure:
    """A unit that did not produce a result.

    Attributes:
        index: position of the unit in ``units``.
        kind: the sweep's kind (cache sub-folder).
        unit: the unit's config.
        error: ``"ExceptionType: message"``.
        traceback: the formatted traceback (from the worker where the unit ran).
    """

    index: int
    kind: str
    unit: Any
    error: str
    traceback: str


class SweepError(RuntimeError):
    """Raised by :meth:`SweepReport.raise_on_failure` when some units failed."""


@dataclasses.dataclass(frozen=True)
class SweepReport:
    """What a sweep produced, aligned with its ``units``.

    Attributes:
        results: one result per unit, None where the unit failed.
        failures: the failed units, by index.
        n_computed: units computed in this run (successfully).
        n_loaded: units loaded from the cache.
        wall_s: wall time of the whole sweep, cluster start-up included.
        runtimes: seconds spent in ``fn`` per unit, measured where it ran; None when loaded (or
            when its worker was lost for good).
        kind: the cache sub-folder.
        keys: the cache key of each unit.
        backend: ``"serial"``, ``"local"`` (a LocalCluster), the scheduler address, or ``"cache"``
            when every unit was loaded (no cluster is started then).
        startup_s: seconds to start the LocalCluster or connect to the scheduler (0 if none).
        n_workers: workers available when the sweep started (1 for serial, 0 if nothing ran).
        warnings: ``(index, message)`` of the warnings units raised while computing (captured in
            the worker and recorded in the cache entry's ``meta``, never printed there).
    """

    results: list
    failures: list[UnitFailure]
    n_computed: int
    n_loaded: int
    wall_s: float
    runtimes: list[Optional[float]]
    kind: str = ""
    keys: list[str] = dataclasses.field(default_factory=list)
    backend: str = "serial"
    startup_s: float = 0.0
    n_workers: int = 0
    warnings: list = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every unit has a result."""
        return not self.failures

    def raise_on_failure(self) -> "SweepReport":
        """Raise :class:`SweepError` describing the failures (first traceback included); else return self."""
        if not self.failures:
            return self
        first = self.failures[0]
        others = ", ".join(str(f.index) for f in self.failures[1:])
        raise SweepError(f"{len(self.failures)} of {len(self.results)} units of {self.kind!r} failed; "
                         f"units[{first.index}] = {first.unit!r}: {first.error}"
                         + (f" (also units {others})" if others else "") + f"\n{first.traceback}")


# ----------------------------------------------------------------------------------------------
# keys, cache, manifest


def _canonical(tree, arrays: dict) -> Any:
    """Replace array references in a payload tree by (dtype, shape, SHA-256 of the bytes)."""
    if isinstance(tree, list):
        return [_canonical(v, arrays) for v in tree]
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            a = np.ascontiguousarray(arrays[tree["__array__"]])
            return {"__array__": [a.dtype.str, list(a.shape), hashlib.sha256(a.tobytes()).hexdigest()]}
        return {k: _canonical(v, arrays) for k, v in tree.items()}
    return tree


def _unit_tree(unit) -> Any:
    tree, arrays = _results.to_payload(unit)
    return _canonical(tree, arrays)


def unit_key(kind: str, unit) -> str:
    """Cache key of one unit: SHA-256 (32 hex digits) of its full config, type, ``kind`` and CACHE_VERSION.

    Every field enters (the seed included), by value and type (``1`` ≠ ``1.0``, a tuple ≠ a list);
    floats by their shortest round-trip repr, so equal configs give equal keys in any process.

    Args:
        kind: the sweep's kind (cache sub-folder).
        unit: a dataclass instance.

    Raises:
        ValueError: ``unit`` is not a dataclass instance, or holds a value that cannot be saved.
    """
    if not dataclasses.is_dataclass(unit) or isinstance(unit, type):
        raise ValueError(f"unit must be a dataclass instance, got {type(unit).__name__}")
    if not isinstance(kind, str):
        raise ValueError(f"kind must be a string, got {kind!r}")
    doc = {"cache_version": CACHE_VERSION, "kind": kind, "unit": _unit_tree(unit)}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _default_kind(fn) -> str:
    name = f"{getattr(fn, '__module__', None) or 'fn'}.{getattr(fn, '__qualname__', type(fn).__name__)}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "fn"


def _load_entry(stem: Path):
    """Load a cached result; register its dataclass types from their modules when needed."""
    for _ in range(8):  # a result may nest several unregistered types
        try:
            return _results.load(stem)
        except _results.CorruptResult as err:
            m = re.search(r"unknown result type '([^']+)'", str(err))
            if not m or not _register_type(m[1]):
                raise
    return _results.load(stem)


def _register_type(name: str) -> bool:
    """Import ``module.Qualname`` and register it with :mod:`rfdiff.results`; False if impossible."""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
            return False
        _results.register(obj)
        return True
    return False


def read_manifest(cache_dir, kind: Optional[str] = None) -> list[dict]:
    """Assemble the manifest of a cache: one dict per finished unit, from each entry's JSON.

    Each dict is the entry's ``meta`` (``kind``, ``key``, ``unit``, ``unit_type``, ``runtime_s``,
    ``worker``, ``host``, ``pid``, ``rfdiff_version``, ``cache_version``, ``finished_at``) plus
    ``path`` (the JSON file) and ``complete`` (its NPZ exists). An entry whose JSON cannot be read
    gives ``{"kind", "key", "path", "error"}``. Sorted by kind, then finish time.

    Args:
        cache_dir: the sweep's cache folder.
        kind: one sub-folder only; None: every kind.

    Raises:
        ValueError: ``cache_dir`` is not a folder, or ``kind`` is not a valid kind.
    """
    root = Path(cache_dir)
    if not root.is_dir():
        raise ValueError(f"cache_dir {str(cache_dir)!r} is not an existing folder")
    if kind is not None and not (isinstance(kind, str) and _KIND.match(kind)):
        raise ValueError(f"kind must be a name made of letters, digits, '_', '.', '-', got {kind!r}")
    folders = [root / kind] if kind is not None else sorted(p for p in root.iterdir() if p.is_dir())
    out = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for js in sorted(folder.glob("*.json")):
            if js.name.startswith("."):
                continue
            try:
                meta = json.loads(js.read_text()).get("meta")
                if not isinstance(meta, dict) or "key" not in meta:
                    raise ValueError("no sweep meta")
            except (OSError, ValueError, AttributeError) as err:
                out.append({"kind": folder.name, "key": js.stem, "path": str(js),
                            "error": f"{type(err).__name__}: {err}"})
                continue
            out.append({**meta, "path": str(js), "complete": js.with_suffix(".npz").exists()})
    out.sort(key=lambda e: (str(e.get("kind")), str(e.get("finished_at", "")), str(e.get("key"))))
    return out


# ----------------------------------------------------------------------------------------------
# the worker side


@dataclasses.dataclass(frozen=True)
class _Outcome:
    """What the worker-side wrapper returns for one unit."""

    ok: bool
    result: Any = None
    runtime_s: Optional[float] = None
    worker: str = ""
    error: str = ""
    traceback: str = ""
    warnings: tuple = ()


def _where() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "serial"


def _run_unit(fn: Callable, unit, kind: str, key: str, cache_dir: str, unit_tree) -> _Outcome:
    """Run ``fn(unit)`` in float64, write the cache entry, and return the result or a failure record."""
    worker = _where()
    t0 = time.perf_counter()
    runtime = None
    try:
        with jax.enable_x64(True), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn(unit)
        runtime = time.perf_counter() - t0
        said = tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
        import rfdiff

        meta = {"kind": kind, "key": key, "cache_version": CACHE_VERSION, "unit": unit_tree,
                "unit_type": f"{type(unit).__module__}.{type(unit).__qualname__}", "runtime_s": runtime,
                "worker": worker, "host": socket.gethostname(), "pid": os.getpid(),
                "rfdiff_version": getattr(rfdiff, "__version__", None),
                "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
                "warnings": list(said)}
        _results.save(result, Path(cache_dir) / kind / key, meta=meta)
        return _Outcome(True, result, runtime, worker, warnings=said)
    except Exception as err:  # reported to the client with its traceback, never retried
        if runtime is None:
            runtime = time.perf_counter() - t0
        return _Outcome(False, None, runtime, worker, f"{type(err).__name__}: {err}", _traceback.format_exc())


# ----------------------------------------------------------------------------------------------
# the client side


def _check_inputs(fn, units, cache_dir, kind, progress, recompute, cluster) -> tuple[list, Path, str]:
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {fn!r}")
    if isinstance(units, (str, bytes)) or not isinstance(units, Sequence):
        raise ValueError(f"units must be a sequence (list or tuple) of frozen dataclass instances, "
                         f"got {type(units).__name__}")
    units = list(units)
    for i, u in enumerate(units):
        if not dataclasses.is_dataclass(u) or isinstance(u, type) or not type(u).__dataclass_params__.frozen:
            raise ValueError(f"units must hold frozen dataclass instances; units[{i}] is {type(u).__name__}")
    if not isinstance(cluster, Cluster):
        raise ValueError(f"cluster must be a rfdiff.sweep.Cluster, got {type(cluster).__name__}")
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be callable or None, got {progress!r}")
    if not isinstance(recompute, (bool, np.bool_)):
        raise ValueError(f"recompute must be a bool, got {recompute!r}")
    kind = _default_kind(fn) if kind is None else kind
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise ValueError(f"kind must be a name made of letters, digits, '_', '.', '-', got {kind!r}")
    if not isinstance(cache_dir, (str, os.PathLike)) or str(cache_dir) == "":
        raise ValueError(f"cache_dir must be a path, got {cache_dir!r}")
    folder = Path(cache_dir) / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".probe."):
            pass
    except OSError as err:
        raise ValueError(f"cache_dir {str(cache_dir)!r} is not a creatable, writable folder "
                         f"({type(err).__name__}: {err.strerror or err})") from None
    return units, Path(cache_dir), kind


@contextlib.contextmanager
def _env_vars(values: dict[str, str]):
    """Set environment variables in this process for the duration, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        os.environ.update(values)
        yield
    finally:
        _restore_env(saved)


def _restore_env(saved: dict[str, Optional[str]]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@contextlib.contextmanager
def _client(cluster: Cluster):
    """A dask Client on the requested cluster: yields (client, backend name); closes what it started."""
    import dask
    from distributed import Client, LocalCluster

    address = cluster.resolved_scheduler()
    if address is not None:
        client = Client(address, set_as_default=False)
        try:
            yield client, address
        finally:
            client.close()
        return
    env = cluster.worker_env()
    blas = {k: env[k] for k in _BLAS_VARS}
    # The nanny copies "pre-spawn-environ" (where os.environ overrides the config) into os.environ
    # right before spawning a worker, so that numpy/OpenBLAS see it at import time; `env` is set in
    # the worker before it starts (enough for XLA, whose backend starts on first use).
    pre_spawn = {**(dask.config.get("distributed.nanny.pre-spawn-environ", None) or {}), **blas}
    saved = {k: os.environ.get(k) for k in pre_spawn}
    try:
        with _env_vars(blas), dask.config.set({"distributed.nanny.pre-spawn-environ": pre_spawn}):
            lc = LocalCluster(n_workers=cluster.local_size(), threads_per_worker=1, processes=True,
                              host="127.0.0.1", scheduler_port=0, dashboard_address=None, env=env)
    finally:
        _restore_env(saved)  # the nannies exported pre_spawn (e.g. dask's MALLOC_TRIM_THRESHOLD_) here
    try:
        client = Client(lc, set_as_default=False)
        try:
            yield client, "local"
        finally:
            client.close()
    finally:
        lc.close()
        _restore_env(saved)  # a nanny that restarted a worker has re-exported the BLAS variables


def run_sweep(fn: Callable, units: Sequence, *, cache_dir, cluster: Cluster = Cluster(), kind: Optional[str] = None,
              progress: Optional[Callable[[int, int], Any]] = None, recompute: bool = False) -> SweepReport:
    """Run ``fn(unit)`` for every unit, on dask or serially, through a persistent cache.

    Units already in ``<cache_dir>/<kind>/`` are loaded; the others are submitted, one task per
    distinct unit (equal configs are computed once). Each worker writes its unit's cache entry
    and returns the result. A unit that raises is reported in ``failures`` while the others
    finish; a lost worker's units are resubmitted by the scheduler.

    Args:
        fn: module-level function ``fn(unit) -> result`` (importable by the workers); the result
            must be something :func:`rfdiff.results.save` can write.
        units: sequence of frozen dataclass instances.
        cache_dir: cache folder (created if needed), reachable by every worker.
        cluster: where to run (:class:`Cluster`).
        kind: cache sub-folder name; default ``fn.__module__ + "." + fn.__qualname__``.
        progress: called as ``progress(done, total)`` after each unit, loaded or computed.
        recompute: ignore cached entries (they are overwritten).

    Returns:
        A :class:`SweepReport` aligned with ``units``.

    Raises:
        ValueError: an invalid argument (the message names it).
        OSError: the scheduler cannot be reached (dask's connect timeout, 30 s by default).
        KeyboardInterrupt: on Ctrl-C, after cancelling the outstanding units and closing the
            LocalCluster.
    """
    t_start = time.perf_counter()
    units, cache_root, kind = _check_inputs(fn, units, cache_dir, kind, progress, recompute, cluster)
    if not cluster.serial:
        cluster.resolved_scheduler()  # validates $RFDIFF_SCHEDULER before any work
    total = len(units)
    keys, trees = [], []
    for i, u in enumerate(units):
        try:
            trees.append(_unit_tree(u))
        except ValueError as err:
            raise ValueError(f"units[{i}] cannot be hashed into a cache key: {err}") from None
        keys.append(unit_key(kind, u))
    results: list = [None] * total
    runtimes: list[Optional[float]] = [None] * total
    failures: list[UnitFailure] = []
    n_loaded = n_computed = 0
    done = 0

    def tick(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    todo: dict[str, list[int]] = {}  # key -> indices of the units to compute with that key
    loaded: dict[str, Any] = {}
    for i, key in enumerate(keys):
        if key in loaded:
            results[i] = loaded[key]
        elif key in todo:
            todo[key].append(i)
            continue
        elif not recompute and (cache_root / kind / f"{key}.json").exists():
            try:
                results[i] = loaded[key] = _load_entry(cache_root / kind / key)
            except _results.CorruptResult:
                todo[key] = [i]
                continue
        else:
            todo[key] = [i]
            continue
        n_loaded += 1
        tick(1)

    said: list = []

    def record(key: str, out: _Outcome) -> None:
        nonlocal n_computed
        idx = todo[key]
        said.extend((idx[0], w) for w in out.warnings)
        for j in idx:
            runtimes[j] = out.runtime_s
            if out.ok:
                results[j] = out.result
            else:
                failures.append(UnitFailure(j, kind, units[j], out.error, out.traceback))
        if out.ok:
            n_computed += len(idx)
        tick(len(idx))

    backend, startup_s, n_workers = ("serial", 0.0, 1) if todo else ("cache", 0.0, 0)
    if todo and cluster.serial:
        for key, idx in todo.items():
            record(key, _run_unit(fn, units[idx[0]], kind, key, str(cache_root), trees[idx[0]]))
    elif todo:
        t0 = time.perf_counter()
        with _client(cluster) as (client, backend):
            startup_s = time.perf_counter() - t0
            n_workers = len(client.nthreads())
            tasks = {key: (units[idx[0]], trees[idx[0]]) for key, idx in todo.items()}
            _run_on_dask(client, fn, kind, str(cache_root), tasks, record)
    failures.sort(key=lambda f: f.index)
    return SweepReport(results, failures, n_computed, n_loaded, time.perf_counter() - t_start, runtimes,
                       kind, keys, backend, startup_s, n_workers, sorted(said))


def _run_on_dask(client, fn: Callable, kind: str, cache_dir: str, tasks: dict, record: Callable) -> None:
    """Submit one task per key, hand each outcome to ``record`` as it completes; on any
    interruption (Ctrl-C, an exception from ``record``) cancel what is outstanding and re-raise."""
    from distributed import as_completed
    from distributed.client import FutureCancelledError

    token = os.urandom(4).hex()  # two sweeps of the same units never share (or cancel) a task
    futures = {}
    try:
        for key, (unit, tree) in tasks.items():
            fut = client.submit(_run_unit, fn, unit, kind, key, cache_dir, tree,
                                key=f"rfdiff-sweep-{kind}-{key}-{token}", pure=False, retries=0)
            futures[fut] = key
        for fut in as_completed(list(futures), loop=client.loop):
            key = futures.pop(fut)
            try:
                out = fut.result()
            except (Exception, FutureCancelledError) as err:  # KilledWorker, fn not importable, cancelled
                tb = "".join(_traceback.format_exception(err)) if err.__traceback__ is not None else ""
                out = _Outcome(False, None, None, "", f"{type(err).__name__}: {err}", tb)
            fut.release()
            record(key, out)
    except BaseException:
        if futures:
            client.cancel(list(futures), force=True)
        raise
