#!/usr/bin/env python
"""Benchmark generation with RF scores (docs/theory.md §5): training of the score grid, sampling, and f_mem.

Default problem: 10 000 samples, d = 64, 100 reverse SDE steps, p = 4096 features per grid time,
20 grid times (one shared W), n = 512 training points. Times, separately: (1) training the 20
scores with the exact dynamics (U, V by Mehler + one eigendecomposition per time; §5.1),
(2) sampling (§5.2), cold (incl. compilation) and warm, in float64 and float32 (their ratio is
measured in the same run), (3) the chunked nearest/second-nearest search for f_mem (§5.3) with
65 536 training points × 10 000 samples. Target: cold float64 sampling ≤ 60 s on 2 cores (recorded
in the JSON as ``meets_target_float64``, not asserted).

Example: python benchmarks/bench_sampling.py            (≈ 5-10 min, dominated by training)
         python benchmarks/bench_sampling.py --quick    (small sizes, < 1 min)
Writes JSON to --out (default results/bench_sampling[_quick].json).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--samples", type=int, default=10000, help="generated samples")
    ap.add_argument("--d", type=int, default=64, help="data dimension")
    ap.add_argument("--p", type=int, default=4096, help="random features per grid time")
    ap.add_argument("--n", type=int, default=512, help="training points")
    ap.add_argument("--n-times", type=int, default=20, help="grid times (one RF score each)")
    ap.add_argument("--steps", type=int, default=100, help="reverse SDE steps")
    ap.add_argument("--metric-n", type=int, default=65536, help="training-set size for the f_mem search timing (0: skip)")
    ap.add_argument("--repeats", type=int, default=2, help="warm repetitions of each sampling timing")
    ap.add_argument("--seed", type=int, default=0, help="PRNG seed")
    ap.add_argument("--out", default=None, help="output JSON path")
    a = ap.parse_args(argv)
    if a.quick:
        a.samples, a.d, a.p, a.n, a.n_times, a.steps, a.metric_n, a.repeats = 2000, 16, 512, 64, 6, 50, 8192, 1
    for k in ("samples", "d", "p", "n", "n_times", "steps", "repeats"):
        if getattr(a, k) <= 0:
            raise SystemExit(f"error: --{k.replace('_', '-')} must be positive")
    if a.out is None:
        a.out = str(ROOT / "results" / f"bench_sampling{'_quick' if a.quick else ''}.json")
    return a


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None) -> int:
    a = parse_args(argv)
    import jax
    import jax.numpy as jnp
    import numpy as np

    from rfdiff import data, io
    from rfdiff_cli.common import run_metadata
    from rfdiff import memorisation as M
    from rfdiff import sampling as S

    key = jax.random.PRNGKey(a.seed)
    k_x, k_w, k_s, k_m = jax.random.split(key, 4)
    P = data.isotropic(a.d)
    X = np.asarray(P.sample(k_x, a.n), dtype=np.float64)
    out = {"config": vars(a).copy(), "metadata": run_metadata(), "load_average_start": os.getloadavg()}

    # (1) training: one RF score per grid time, τ = 1e3 and τ = ∞ from one eigendecomposition each
    t0 = time.perf_counter()
    per = []
    G = S.train_score_grid(k_w, X, [1e3, np.inf], a.p, n_times=a.n_times, t_min=0.01, t_max=5.0,
                           callback=lambda k, t: per.append(time.perf_counter()))
    t_train = time.perf_counter() - t0
    info = G.info["per_time"]
    out["training"] = {
        "total_s": t_train, "per_time_s": np.diff([t0] + per).tolist(),
        "matrices_s": sum(r["seconds_matrices"] for r in info), "eigh_s": sum(r["seconds_eigh"] for r in info),
        "A_s": sum(r["seconds_A"] for r in info), "mehler_orders": [r["mehler_order"] for r in info],
        "max_trunc_error": max(r["trunc_error"] for r in info), "peak_rss_mb": peak_rss_mb()}
    print(f"training {a.n_times} scores (p={a.p}, n={a.n}, d={a.d}): {t_train:.1f} s "
          f"(matrices {out['training']['matrices_s']:.1f} s, eigh {out['training']['eigh_s']:.1f} s)", flush=True)

    # (2) sampling, cold and warm, float64 and float32
    out["sampling"] = {}
    for name, dtype in (("float64", jnp.float64), ("float32", jnp.float32)):
        times = []
        for r in range(1 + a.repeats):
            t0 = time.perf_counter()
            y = S.sample_rf(jax.random.fold_in(k_s, r), G, a.samples, tau_index=1, n_steps=a.steps, dtype=dtype)
            y.block_until_ready()
            times.append(time.perf_counter() - t0)
        fm = M.f_mem(M.distance_ratio(np.asarray(y, dtype=np.float64), X))
        out["sampling"][name] = {"cold_s": times[0], "warm_s": float(np.median(times[1:])), "all_s": times,
                                 "f_mem_tau_inf": fm, "finite": bool(np.all(np.isfinite(np.asarray(y))))}
        print(f"sampling {a.samples} x d={a.d}, {a.steps} steps, p={a.p}, {a.n_times} grid times, {name}: "
              f"cold {times[0]:.1f} s, warm {np.median(times[1:]):.1f} s  (f_mem at τ=∞: {fm:.3f})", flush=True)
    out["sampling"]["target_s"] = 60.0
    out["sampling"]["meets_target_float64"] = out["sampling"]["float64"]["cold_s"] <= 60.0
    out["sampling"]["peak_rss_mb"] = peak_rss_mb()

    # (3) chunked top-2 search for f_mem at scale
    if a.metric_n > 0:
        Xbig = np.asarray(P.sample(k_m, a.metric_n), dtype=np.float64)
        t0 = time.perf_counter()
        d1, d2, _ = M.nearest_two(np.asarray(y, dtype=np.float64), Xbig)
        t_metric = time.perf_counter() - t0
        out["metric"] = {"train_points": a.metric_n, "samples": a.samples, "seconds": t_metric,
                         "peak_rss_mb": peak_rss_mb()}
        print(f"nearest/second-nearest: {a.samples} samples x {a.metric_n} training points: {t_metric:.1f} s, "
              f"peak RSS {peak_rss_mb():.0f} MB", flush=True)
    out["load_average_end"] = os.getloadavg()
    path = io.save_json(Path(a.out), out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
