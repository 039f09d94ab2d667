"""Where a command's sweep runs: a local Dask cluster, an existing scheduler, or this process (``--serial``).

The flags (:func:`add_flags`) become a :class:`ClusterSpec` (:func:`from_args`), checked before any
computation: ``--scheduler`` (default ``$RFDIFF_SCHEDULER``) excludes ``--serial`` and ``--workers``,
which in turn override the environment variable. :meth:`ClusterSpec.client` then yields what
:func:`rfdiff.run_sweep` takes:

* ``--serial``: None (every unit in this process).
* ``--scheduler``: a Client of that scheduler. :func:`from_args` already opens one connection, which
  fails within ``--connect-timeout`` seconds with Dask's own reason on one line (exit 2).
* otherwise a LocalCluster, started on first use (a fully cached sweep starts none), without a
  dashboard unless ``--dashboard`` (which needs ``pip install 'rfdiff[dashboard]'``). Each worker
  process runs one unit at a time with ``threads_per_worker`` BLAS/XLA threads, enforced through
  environment variables set before the workers are spawned: ``OMP_NUM_THREADS``,
  ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` (read when numpy is imported), ``NPROC``
  (XLA's CPU thread pool, read when the JAX backend starts; ``--xla_cpu_multi_thread_eigen=false``
  alone does not stop XLA's multi-threaded dot) and, for one thread, that flag in ``XLA_FLAGS``.
  This process's environment is restored once the cluster is up and again when it is closed.
  Workers of an external scheduler are started by someone else (``dask worker --nthreads 1``).

While the client holds unfinished tasks, a watchdog checks that the scheduler still has workers:
after ``--no-workers-timeout`` seconds without any it stops the sweep with one line and exit 1;
a scheduler that goes away mid-sweep is reported the same way. Finished units stay cached, so a
rerun resumes.
"""
from __future__ import annotations

import _thread
import argparse
import contextlib
import dataclasses
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from typing import Optional

from rfdiff_cli.common import UsageError

SCHEDULER_ENV = "RFDIFF_SCHEDULER"
BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
EXIT_NO_WORKERS = 1


def add_flags(ap: argparse.ArgumentParser) -> None:
    """The flags of :class:`ClusterSpec`."""
    g = ap.add_argument_group("where the sweep runs")
    g.add_argument("--scheduler", default=None,
                   help=f"address of an existing Dask scheduler (tcp://host:8786; default ${SCHEDULER_ENV} if set, "
                        "else a local cluster started and stopped by this command)")
    g.add_argument("--workers", type=int, default=None, help="local cluster: worker processes (default: cores)")
    g.add_argument("--serial", action="store_true", help="run the units one by one in this process (no Dask)")
    g.add_argument("--connect-timeout", type=float, default=5.0, help="seconds to reach --scheduler (default 5)")
    g.add_argument("--no-workers-timeout", type=float, default=60.0,
                   help="stop when the cluster has had no worker for this many seconds (default 60)")
    g.add_argument("--dashboard", action="store_true",
                   help="local cluster: serve Dask's dashboard (needs pip install 'rfdiff[dashboard]')")


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """Checked cluster flags; ``source`` names where ``scheduler`` came from (for messages)."""

    scheduler: Optional[str] = None
    workers: Optional[int] = None
    serial: bool = False
    connect_timeout: float = 5.0
    no_workers_timeout: float = 60.0
    dashboard: bool = False
    threads_per_worker: int = 1
    source: str = "--scheduler"

    def local_size(self) -> int:
        """Number of LocalCluster worker processes."""
        return self.workers or max(1, (os.cpu_count() or 1) // self.threads_per_worker)

    def worker_env(self) -> dict[str, str]:
        """Environment variables that hold a LocalCluster worker to ``threads_per_worker`` threads."""
        n = str(self.threads_per_worker)
        env = {**{k: n for k in BLAS_VARS}, "NPROC": n}
        flags = os.environ.get("XLA_FLAGS", "")
        if self.threads_per_worker == 1 and "xla_cpu_multi_thread_eigen" not in flags:
            flags = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
        return {**env, "XLA_FLAGS": flags} if flags else env

    @contextlib.contextmanager
    def client(self):
        """None (``serial``), a Client of ``scheduler``, or a LocalCluster's Client started on first use."""
        if self.serial:
            yield None
            return
        holder = _Connected(self) if self.scheduler else _LocalClient(self)
        lost = False
        try:
            try:
                yield holder.client if self.scheduler else holder
            finally:
                lost = self.scheduler is not None and holder.client.status != "running"
                holder.close(quiet=lost)
        except KeyboardInterrupt:  # from the watchdog (also while closing), or Ctrl-C
            if holder.watchdog is not None and holder.watchdog.fired:
                print(f"error: {holder.watchdog.fired}", file=sys.stderr)
                raise SystemExit(EXIT_NO_WORKERS) from None
            raise
        except Exception:  # the units cancelled by a lost scheduler are reported as failures
            if lost:
                print(f"error: lost the connection to the Dask scheduler at {self.scheduler}: sweep stopped; "
                      f"finished units are cached, a rerun resumes", file=sys.stderr)
                raise SystemExit(EXIT_NO_WORKERS) from None
            raise


def from_args(args) -> ClusterSpec:
    """The :class:`ClusterSpec` of parsed flags; :class:`UsageError` (one line, exit 2) for a bad or conflicting one."""
    for flag in ("connect_timeout", "no_workers_timeout"):
        v = getattr(args, flag)
        if not (math.isfinite(v) and v > 0):
            raise UsageError(f"--{flag.replace('_', '-')}: must be a positive number of seconds, got {v!r}")
    if args.workers is not None and args.workers <= 0:
        raise UsageError(f"--workers: must be a positive integer, got {args.workers!r}")
    scheduler, source = args.scheduler, "--scheduler"
    if scheduler is not None and (args.serial or args.workers is not None):
        raise UsageError(f"--scheduler: cannot be combined with {'--serial' if args.serial else '--workers'} "
                         "(the scheduler's own workers run the sweep)")
    if scheduler is None and not args.serial and args.workers is None and os.environ.get(SCHEDULER_ENV, "").strip():
        scheduler, source = os.environ[SCHEDULER_ENV].strip(), SCHEDULER_ENV
    if args.dashboard and (args.serial or scheduler is not None):
        why = "--serial runs no cluster" if args.serial else f"the scheduler of {source} serves its own"
        raise UsageError(f"--dashboard: only for a local cluster; {why}")
    if args.dashboard and _missing("bokeh"):
        raise UsageError("--dashboard: needs bokeh (pip install 'rfdiff[dashboard]')")
    spec = ClusterSpec(scheduler, args.workers, bool(args.serial), float(args.connect_timeout),
                       float(args.no_workers_timeout), bool(args.dashboard), source=source)
    if scheduler is not None:
        _probe(spec)  # before the command creates or computes anything
    return spec


def _probe(spec: ClusterSpec) -> None:
    """Open and close one connection to ``spec.scheduler``; UsageError with Dask's reason if that fails."""
    import asyncio

    from distributed.comm import connect
    from distributed.security import Security

    async def probe():
        comm = await connect(spec.scheduler, timeout=spec.connect_timeout, **Security().get_connection_args("client"))
        await comm.close()

    try:
        asyncio.run(probe())
    except (OSError, ValueError, TypeError, TimeoutError) as err:
        msg = (str(err).splitlines() or [type(err).__name__])[0]
        raise UsageError(f"{spec.source}: cannot reach a Dask scheduler at {spec.scheduler!r}: {msg}") from None


def _missing(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is None


class _Watchdog(threading.Thread):
    """Interrupts the main thread when ``client`` has unfinished tasks and no worker for ``timeout`` seconds."""

    def __init__(self, client, timeout: float, where: str):
        super().__init__(daemon=True, name="rfdiff-no-workers-watchdog")
        self.client, self.timeout, self.where = client, timeout, where
        self.stop, self.fired, self.lock = threading.Event(), "", threading.Lock()

    def close(self) -> None:
        """Stop watching; once this returns no interrupt is sent any more."""
        with self.lock:
            self.stop.set()

    def run(self) -> None:
        since = None
        while not self.stop.wait(min(1.0, self.timeout / 4)):
            if not self.client.futures:
                since = None
                continue
            try:
                n = len(self.client.nthreads())
            except Exception:  # the scheduler itself is gone: no workers either
                n = 0
            since = None if n else (since or time.monotonic())
            if since is not None and time.monotonic() - since >= self.timeout:
                with self.lock:
                    if self.stop.is_set():
                        return
                    self.fired = (f"no Dask worker at {self.where} for {self.timeout:g} s (--no-workers-timeout): "
                                  f"sweep stopped; finished units are cached, a rerun resumes")
                    _interrupt_main()
                return


def _interrupt_main() -> None:
    """KeyboardInterrupt in the main thread: a real SIGINT to it where Python handles SIGINT; otherwise (SIGINT
    ignored, as in a background job, where ``_thread.interrupt_main`` does nothing) the exception is raised
    in the main thread directly, which sees it at its next bytecode (the sweep polls, never blocks)."""
    main = threading.main_thread().ident
    if hasattr(signal, "pthread_kill") and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.pthread_kill(main, signal.SIGINT)
    else:
        import ctypes
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(main), ctypes.py_object(KeyboardInterrupt))


class _Connected:
    """A Client of an existing scheduler, reached within ``connect_timeout`` or a UsageError."""

    def __init__(self, spec: ClusterSpec):
        from distributed import Client

        _probe(spec)  # again: it may have gone since (a failed Client would hang in its own close at exit)
        try:
            self.client = Client(spec.scheduler, timeout=spec.connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as err:
            raise UsageError(f"{spec.source}: cannot reach a Dask scheduler at {spec.scheduler!r}: {err}") from None
        # a lost scheduler is reported in one line by ClusterSpec.client, not by each failed reconnection's traceback
        logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
        self.watchdog = _Watchdog(self.client, spec.no_workers_timeout, spec.scheduler)
        self.watchdog.start()

    def close(self, quiet: bool = False) -> None:
        """Close the client (``quiet``: without Dask's log of the reconnection it cancels)."""
        self.watchdog.close()
        if quiet:
            for name in ("distributed", "asyncio"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
        self.client.close()


class _LocalClient:
    """Stands for the Client of a LocalCluster that starts on first attribute access."""

    def __init__(self, spec: ClusterSpec):
        self._spec, self._client, self._cluster, self.watchdog = spec, None, None, None
        self._saved = {}

    def __getattr__(self, name):
        if name.startswith("__"):  # copy, pickle and repr probes never start a cluster
            raise AttributeError(name)
        if self._client is None:
            self._start()
        return getattr(self._client, name)

    def _start(self) -> None:
        import dask
        from distributed import Client, LocalCluster

        env = self._spec.worker_env()
        blas = {k: env[k] for k in BLAS_VARS}
        # The nanny copies "pre-spawn-environ" (where os.environ overrides the config) into os.environ right
        # before spawning a worker, so numpy/OpenBLAS see it at import; `env` is set in the worker before it starts.
        pre_spawn = {**(dask.config.get("distributed.nanny.pre-spawn-environ", None) or {}), **blas}
        self._saved = {k: os.environ.get(k) for k in pre_spawn}
        # The scheduler always serves HTTP (health, metrics): on a free port unless the dashboard is asked for.
        dashboard = "127.0.0.1:8787" if self._spec.dashboard and _free(8787) else "127.0.0.1:0"
        try:
            os.environ.update(blas)
            with dask.config.set({"distributed.nanny.pre-spawn-environ": pre_spawn}):
                self._cluster = LocalCluster(n_workers=self._spec.local_size(), threads_per_worker=1, processes=True,
                                             host="127.0.0.1", scheduler_port=0, dashboard_address=dashboard, env=env,
                                             scheduler_kwargs={"dashboard": self._spec.dashboard})
        finally:
            _restore(self._saved)  # the nannies exported pre_spawn (e.g. dask's MALLOC_TRIM_THRESHOLD_) here
        self._client = Client(self._cluster, set_as_default=False)
        if self._spec.dashboard:
            print(f"dashboard: {self._cluster.dashboard_link}", file=sys.stderr)
        self.watchdog = _Watchdog(self._client, self._spec.no_workers_timeout, "the local cluster")
        self.watchdog.start()

    def close(self, quiet: bool = False) -> None:
        if self.watchdog is not None:
            self.watchdog.close()
        if self._client is not None:
            self._client.close()
            self._cluster.close()
            _restore(self._saved)  # a nanny that restarted a worker has re-exported the BLAS variables


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _restore(saved: dict) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
