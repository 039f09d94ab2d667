#!/usr/bin/env python
"""Benchmark the exact pipeline: U, V (Mehler), Ũ, Ṽ, eigendecomposition, curves — time and memory vs p.

Stages (docs/theory.md §2.3–2.5 for the matrices, §3.2 for the dynamics): ``matrices.train_matrices``
(U, V), ``matrices.population_matrices`` (Ũ, Ṽ), ``dynamics.exact_dynamics`` (one eigendecomposition
of U and the quadratic forms of the curves), ``ExactDynamics.curves`` at 161 log-spaced τ.
Each size runs in a fresh subprocess (clean peak-memory reading). Timings are medians over
--repeats warm runs after one cold run; the eigendecomposition (``dynamics.eigh``: numpy's LAPACK
on CPU) is compared with jnp.linalg.eigh in the same process (ratio = jnp / numpy). Log-log
exponents of each stage against p (and n, with --n-list) are fitted over the sizes run.
Example: python benchmarks/bench_core.py --p-list 1024,2048,4096 --n 512
         python benchmarks/bench_core.py --quick      (p = 512, 1024, one repeat; under a minute)
Writes JSON to --out (default results/bench_core.json; results/bench_core_quick.json with --quick).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_size(p: int, n: int, d: int, repeats: int, compare_jnp: bool) -> dict:
    import resource

    import jax
    import numpy as np

    from rfdiff import data, dynamics, features, matrices
    from rfdiff.population import Population

    jax.config.update("jax_enable_x64", True)
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    W = features.init_W(k1, p, d)
    X = data.isotropic(d).sample(k2, n)
    out = {"p": p, "n": n, "d": d}

    def timed(fn, reps):
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            r = fn()
            jax.block_until_ready(getattr(r, "U", r))
            times.append(time.perf_counter() - t0)
        return r, times

    tm, cold = timed(lambda: matrices.train_matrices(W, X, 0.1, tol=1e-8), 1)
    tm, warm = timed(lambda: matrices.train_matrices(W, X, 0.1, tol=1e-8), repeats)
    out.update(train_UV_cold_s=cold[0], train_UV_s=float(np.median(warm)), mehler_order=tm.order,
               mehler_error=tm.trunc_error, quad_order=tm.info["quad_order"])
    pm, t_pop = timed(lambda: matrices.population_matrices(W, data.isotropic(d), 0.1, tol=1e-8), 1 + repeats)
    out["pop_UV_s"] = float(np.median(t_pop[1:]))
    t0 = time.perf_counter()
    dyn = dynamics.exact_dynamics(tm.U, tm.V, 0.1, Population(pm.U, pm.V, float(d)))
    out["eig_and_precompute_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dynamics.eigh(tm.U)
    out["eigh_numpy_s"] = time.perf_counter() - t0
    if compare_jnp:
        with jax.enable_x64(True):
            Uj = jax.numpy.asarray(tm.U)
            t0 = time.perf_counter()
            jax.block_until_ready(jax.numpy.linalg.eigh(Uj))
            out["eigh_jnp_s"] = time.perf_counter() - t0
            out["eigh_ratio_jnp_over_numpy"] = out["eigh_jnp_s"] / out["eigh_numpy_s"]
    taus = np.logspace(-1, 7, 161)
    dyn.curves(taus)
    t0 = time.perf_counter()
    dyn.curves(taus)
    out["curves_161_tau_s"] = time.perf_counter() - t0
    out["peak_rss_GB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return out


def run_one(cmd: list[str]) -> dict:
    """One size in a fresh process; its last stdout line is the JSON row (stderr shown on failure)."""
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p-list", default="1024,2048,4096", help="comma-separated p values")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--n-list", default="", help="also scan n (comma-separated) at p = --p-n-scan")
    ap.add_argument("--p-n-scan", type=int, default=2048, help="p for the n scan")
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-jnp", action="store_true", help="skip the jnp.linalg.eigh comparison")
    ap.add_argument("--quick", action="store_true", help="p = 512, 1024 only, one repeat")
    ap.add_argument("--out", default=None, help="output JSON (default results/bench_core[_quick].json)")
    ap.add_argument("--_one", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = str(ROOT / "results" / f"bench_core{'_quick' if args.quick else ''}.json")
    if args._one is not None:
        print(json.dumps(one_size(args._one, args.n, args.d, args.repeats, not args.no_jnp)))
        return 0
    ps = [512, 1024] if args.quick else [int(x) for x in args.p_list.split(",")]
    reps = 1 if args.quick else args.repeats
    rows = []
    for p in ps:
        cmd = [sys.executable, __file__, "--_one", str(p), "--n", str(args.n), "--d", str(args.d),
               "--repeats", str(reps)] + (["--no-jnp"] if args.no_jnp else [])
        row = run_one(cmd)
        rows.append(row)
        print(json.dumps(row))
    n_rows = []
    for n in [int(x) for x in args.n_list.split(",") if x]:
        cmd = [sys.executable, __file__, "--_one", str(args.p_n_scan), "--n", str(n), "--d", str(args.d),
               "--repeats", str(reps), "--no-jnp"]
        row = run_one(cmd)
        n_rows.append(row)
        print(json.dumps(row))
    from rfdiff import io
    from rfdiff_cli.common import run_metadata
    import numpy as np

    def exponents(rs, var):
        if len(rs) < 2:
            return {}
        lx = np.log([r[var] for r in rs])
        return {k: float(np.polyfit(lx, np.log([r[k] for r in rs]), 1)[0])
                for k in ("train_UV_s", "eig_and_precompute_s", "curves_161_tau_s", "peak_rss_GB")}

    fits = {"vs_p": exponents(rows, "p"), "vs_n": exponents(n_rows, "n")}
    io.save_json(args.out, {"rows_vs_p": rows, "rows_vs_n": n_rows, "fitted_exponents": fits,
                            "metadata": run_metadata()})
    print("fitted exponents:", fits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
