#!/usr/bin/env python
"""Benchmark the sweep (rfdiff.sweep.run_sweep): serial vs a 2-worker LocalCluster, and its overheads.

Work: 8 units at d = 32, p = 2048, n = 256 (``build_problem`` + ``from_problem`` + ``curves`` at 161
log-spaced τ in [0.1, 1e7]), each with its own seed; run serially in this process (fresh cache),
then on the command line's LocalCluster (``rfdiff_cli.cluster.ClusterSpec(workers=2)``: one BLAS/XLA
thread per worker; fresh cache), in the same run. The
serial run uses this process's default BLAS/XLA threads (all cores); the cluster runs one unit per
worker process with one thread each. For reference, also on one worker with 2 threads (same
hardware use as serial: the engine's cost alone). Checks whether serial and cluster curves are
bit-identical (they are when the client runs with the workers' thread settings).

Overheads: 16 no-op units, serially and on a fresh LocalCluster (start-up reported separately),
then on an already running LocalCluster (warm workers: the engine's own per-unit cost), and the
time to load the 8 cached units again. Writes JSON to --out (machine info included; default
results/bench_sweep.json, results/bench_sweep_quick.json with --quick).
Example: python benchmarks/bench_sweep.py            (a few minutes on 2 cores)
         python benchmarks/bench_sweep.py --quick    (d = 16, p = 512, n = 64, 4 units)
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class BenchUnit:
    """One RF problem of the benchmark (every field enters the cache key)."""

    d: int = 32
    p: int = 2048
    n: int = 256
    t: float = 0.1
    seed: int = 0
    n_tau: int = 161


def bench_unit(u: BenchUnit):
    """Exact U, V, Ũ, Ṽ (``build_problem``), one eigendecomposition, and the curves at ``n_tau`` τ."""
    import numpy as np

    from rfdiff import dynamics, model

    prob = model.build_problem(model.RFConfig(d=u.d, p=u.p, n=u.n, t=u.t, seed=u.seed))
    c = dynamics.from_problem(prob).curves(np.logspace(-1, 7, u.n_tau))  # a rfdiff.results.Curves
    return dataclasses.replace(c, method="exact (bench_sweep)")


@dataclasses.dataclass(frozen=True)
class NoopUnit:
    """A unit that does nothing (engine overhead)."""

    i: int


def noop_unit(u: NoopUnit) -> int:
    """Return ``u.i``."""
    return u.i


def _same(a, b) -> tuple[bool, float]:
    """Bit-identity of two Curves, and the largest difference of a curve relative to its max |value|."""
    import numpy as np

    da, db = a.as_dict(), b.as_dict()
    same = da.keys() == db.keys() and all(np.array_equal(da[k], db[k]) for k in da)
    rel = max(float(np.max(np.abs(da[k] - db[k])) / max(float(np.max(np.abs(da[k]))), 1e-300)) for k in da)
    return same, rel


def _sweep(fn, units, cache, spec=None, start: bool = True):
    """``run_sweep`` on a fresh client of ``spec`` (None: serially): ``(report, wall_s, startup_s)``, where the
    wall time includes the cluster's start-up (``start=False``: the cluster starts only if a unit is not cached)."""
    from rfdiff import sweep

    t0 = time.perf_counter()
    if spec is None:
        rep = sweep.run_sweep(fn, units, cache=cache)
        return rep, time.perf_counter() - t0, 0.0
    with spec.client() as client:
        if start:
            client.nthreads()
        startup = time.perf_counter() - t0 if start else 0.0
        rep = sweep.run_sweep(fn, units, cache=cache, client=client)
    return rep, time.perf_counter() - t0, startup


def _summary(run) -> dict:
    rep, wall, startup = run
    rt = [r for r in rep.runtimes if r is not None]
    return {"wall_s": wall, "startup_s": startup, "n_workers": rep.n_workers, "backend": rep.backend,
            "n_computed": rep.n_computed, "n_loaded": rep.n_loaded, "n_failed": len(rep.failures),
            "unit_runtimes_s": rep.runtimes, "sum_unit_runtimes_s": sum(rt)}


def main(argv=None) -> int:
    import os

    import distributed

    from rfdiff import io
    from rfdiff.cache import Cache
    from rfdiff_cli.cluster import ClusterSpec
    from rfdiff_cli.common import run_metadata

    load_before = os.getloadavg()
    client_env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NPROC", "XLA_FLAGS")}

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=int, default=8, help="number of work units (seeds 0 … units-1)")
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--p", type=int, default=2048)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (1 thread each)")
    ap.add_argument("--noop", type=int, default=16, help="number of no-op units for the overhead runs")
    ap.add_argument("--quick", action="store_true", help="d = 16, p = 512, n = 64, 4 units")
    ap.add_argument("--out", default=None, help="output JSON (default results/bench_sweep.json; "
                                                 "results/bench_sweep_quick.json with --quick)")
    args = ap.parse_args(argv)
    if args.quick:
        args.units, args.d, args.p, args.n = 4, 16, 512, 64
    if args.out is None:
        args.out = str(Path(__file__).resolve().parents[1] / "results" /
                       f"bench_sweep{'_quick' if args.quick else ''}.json")
    units = [BenchUnit(d=args.d, p=args.p, n=args.n, seed=s) for s in range(args.units)]
    noops = [NoopUnit(i) for i in range(args.noop)]
    local = ClusterSpec(workers=args.workers, threads_per_worker=1)
    out: dict = {"config": {"units": args.units, "d": args.d, "p": args.p, "n": args.n, "t": 0.1, "n_tau": 161,
                            "workers": args.workers, "threads_per_worker": 1, "noop_units": args.noop,
                            "quick": args.quick}}

    def show(name, run):
        rep, wall, startup = run
        print(f"{name:<28} wall {wall:7.2f} s  start-up {startup:5.2f} s  computed {rep.n_computed:2d}  "
              f"loaded {rep.n_loaded:2d}  failed {len(rep.failures)}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        tmp = Path(tmp)
        ser = _sweep(bench_unit, units, Cache(tmp / "serial"))
        show("work, serial", ser)
        par = _sweep(bench_unit, units, Cache(tmp / "local"), local)
        show(f"work, LocalCluster({args.workers})", par)
        one = _sweep(bench_unit, units, Cache(tmp / "local_1x", "bench_1x"),
                     ClusterSpec(workers=1, threads_per_worker=args.workers))
        show(f"work, LocalCluster(1 x {args.workers} thr)", one)
        for run in (ser, par, one):
            run[0].raise_on_failure()
        same = [_same(a, b) for a, b in zip(ser[0].results, par[0].results)]
        again = _sweep(bench_unit, units, Cache(tmp / "local"), local, start=False)
        show("work, all cached", again)
        out["work"] = {"serial": _summary(ser), "local_cluster": _summary(par), "cached": _summary(again),
                       "local_cluster_1_worker_all_threads": _summary(one),
                       "speedup_wall_1_worker_all_threads": ser[1] / one[1],
                       "speedup_wall": ser[1] / par[1],
                       "speedup_wall_excluding_startup": ser[1] / (par[1] - par[2]),
                       "bit_identical_serial_vs_cluster": all(s for s, _ in same),
                       "max_rel_diff_serial_vs_cluster": max(r for _, r in same),
                       "load_per_unit_s": again[1] / len(units)}

        n0 = _sweep(noop_unit, noops, Cache(tmp / "noop_serial"))
        show("no-op, serial", n0)
        n1 = _sweep(noop_unit, noops, Cache(tmp / "noop_local"), local)
        show(f"no-op, LocalCluster({args.workers})", n1)
        # warm workers: one LocalCluster kept up across two sweeps (the first one warms the workers)
        t0 = time.perf_counter()
        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address="127.0.0.1:0", env=local.worker_env()) as lc:
            t_lc = time.perf_counter() - t0
            warm = ClusterSpec(scheduler=lc.scheduler_address)
            _sweep(noop_unit, [NoopUnit(-1 - i) for i in range(args.workers)], Cache(tmp / "warmup"), warm)
            n2 = _sweep(noop_unit, noops, Cache(tmp / "noop_warm"), warm)
            show(f"no-op, warm LocalCluster({args.workers})", n2)
        k = len(noops)
        out["overhead"] = {
            "noop_units": k,
            "serial_per_unit_s": n0[1] / k,
            "cluster_startup_s": n1[2],
            "cluster_cold_per_unit_s": (n1[1] - n1[2]) / k,
            "cluster_warm_per_unit_s": (n2[1] - n2[2]) / k,
            "cluster_wall_s": n1[1],
            "client_connect_s": n2[2],
            "local_cluster_start_s_direct": t_lc,
            "notes": "per-unit = (wall - start-up)/units; cold: fresh workers (first task imports rfdiff/JAX); "
                     "warm: workers already used once; serial and cluster both write every cache entry",
        }
    out["metadata"] = {**run_metadata(), "dask": __import__("dask").__version__,
                       "distributed": distributed.__version__,
                       "loadavg_1_5_15_before": list(load_before), "loadavg_1_5_15_after": list(os.getloadavg()),
                       "client_threads_env_at_start": client_env}
    path = io.save_json(args.out, out)
    w, o = out["work"], out["overhead"]
    print(f"speed-up {w['speedup_wall']:.2f} (excluding start-up {w['speedup_wall_excluding_startup']:.2f}); "
          f"bit-identical {w['bit_identical_serial_vs_cluster']} "
          f"(max rel diff {w['max_rel_diff_serial_vs_cluster']:.1e})")
    print(f"overhead per unit: serial {1e3 * o['serial_per_unit_s']:.1f} ms, cluster cold "
          f"{1e3 * o['cluster_cold_per_unit_s']:.1f} ms, warm {1e3 * o['cluster_warm_per_unit_s']:.1f} ms; "
          f"cluster start-up {o['cluster_startup_s']:.2f} s")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    # Run the functions above from the module ``bench_sweep`` (not ``__main__``), so that dask
    # workers import them by reference (they inherit sys.path from this process).
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_sweep

    sys.exit(bench_sweep.main())
