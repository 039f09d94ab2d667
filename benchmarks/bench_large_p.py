#!/usr/bin/env python
"""The large-p route (U formed once, Ũ streamed, curves by block Krylov from V, the spectral edges: the top d + 1
eigenvalues by block Lanczos and the n-th by one LDLᵀ of U − σI) against its flop floor, measured in one process.

Example: nice -n 19 python benchmarks/bench_large_p.py --p 25600 --n 1600 --d 100
         python benchmarks/bench_large_p.py --p 51200 --n 3200 --d 200 --estimate-only
For one (p, n, d) it measures the machine's float64 GEMM rate (a 4096 × 4096 by 4096 × 1024 product,
median of 3, before and after the run), runs :func:`rfdiff.study.run` without the theory (the route is
the simulation: curves L_train, L_test, L_gen, E_score on the τ grid, τ_gen, τ_mem, λ_mem, λ_pop), and
records wall time per stage, peak RSS, the route's memory estimate, the route's operation count
(:func:`rfdiff.study.route_cost` with the measured Mehler order, Krylov basis and top-eigenvalue basis)
and the ratio of the wall time to that count at the measured GEMM rate (the flop floor). The
spectral edges are reported with their residual bounds. ``--estimate-only`` prints the a-priori cost
and the time it implies at the rate and floor ratio of an earlier row of the results file.
Rows are merged into benchmarks/results/bench_large_p.json by their size key (``--out``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def gemm_rate(repeats: int = 3) -> float:
    """float64 GEMM rate (flop/s) of this machine as it is now: median of ``repeats`` 4096 × 4096 × 1024 products."""
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((4096, 4096)), rng.standard_normal((4096, 1024))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        A @ B
        ts.append(time.perf_counter() - t0)
    return 2 * 4096 * 4096 * 1024 / sorted(ts)[len(ts) // 2]


def measure(p: int, n: int, d: int, n_tau: int, seed: int, spectrum: str = "auto", steps: int = 64) -> dict:
    from rfdiff import study
    from rfdiff.model import RFConfig
    from rfdiff.resources import peak_rss_bytes

    cfg = RFConfig(d=d, p=p, n=n, seed=seed)
    opts = study.StudyOptions(taus=study.TauGrid(0.1, 1e7, n_tau), theory=False, spectrum=spectrum,
                              lanczos_max_steps=steps)
    prior = study.route_cost(cfg, opts)
    print(f"route {prior['method']} / {prior['spectrum_method']}: ≈ {prior['total']:.3g} flops, "
          f"≈ {prior['bytes'] / 1e9:.1f} GB (a priori)", file=sys.stderr, flush=True)
    rate0 = gemm_rate()
    marks = []          # (stage starting, peak RSS so far): the peak within a stage is the mark at the next one

    def mark(stage):
        marks.append((stage, peak_rss_bytes() / 1e9))
        print(f"{time.strftime('%H:%M:%S')} {stage} (peak RSS so far {marks[-1][1]:.2f} GB)", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    res = study.run(cfg, opts, progress=mark)
    wall = time.perf_counter() - t0
    mark("end")
    stage_peak = {a[0]: b[1] for a, b in zip(marks, marks[1:])}
    rate1 = gemm_rate()
    rate = 0.5 * (rate0 + rate1)
    dg = res.diagnostics
    spec = dg.get("spectrum", {})
    cost = study.route_cost(cfg, opts, order=dg["matrices"]["train_order"], pop_order=dg["matrices"]["pop_order"],
                            basis=dg["dynamics"].get("basis_size"), edge_basis=spec.get("basis_size"))
    floor = {k: cost[k] / rate for k in ("matrices", "dynamics", "spectrum", "curves")}
    ts = res.simulation.timescales
    return {
        "p": p, "n": n, "d": d, "n_tau": n_tau, "seed": seed, "route": dg["method"], "spectrum": dg["spectrum_method"],
        "wall_s": wall, "stages_s": {k: v for k, v in res.timings.items()},
        "peak_rss_gb": peak_rss_bytes() / 1e9, "peak_rss_gb_by_end_of_stage": stage_peak, "memory_estimate_gb": dg["memory_estimate_bytes"] / 1e9,
        "gemm_gflops_before_after": [rate0 / 1e9, rate1 / 1e9],
        "flops": {k: cost[k] for k in ("matrices", "dynamics", "spectrum", "curves", "total")},
        "flops_a_priori": prior["total"],
        "floor_s": {**floor, "total": cost["total"] / rate},
        "ratio_to_floor": wall / (cost["total"] / rate),
        "stage_ratio_to_floor": {k: res.timings[k] / floor[k] for k in floor if floor[k] > 0 and k in res.timings},
        "mehler_order": dg["matrices"]["train_order"], "krylov": dg["dynamics"].get("method"),
        "edges_lanczos": spec.get("method"), "edges": spec.get("edges"),
        "edges_error_estimate": spec.get("error_estimate"),
        "tau_gen": ts.tau_gen, "tau_mem": ts.tau_mem, "lambda_mem": ts.lambda_mem, "lambda_pop": ts.lambda_pop,
        "cpu_count": os.cpu_count(), "load_average_after": list(os.getloadavg()),
        "targets": "p=25600: ≤ 300 s, ≤ 12 GB; p=51200: ≤ 1800 s, ≤ 20 GB (2 cores)",
    }


def estimate(p: int, n: int, d: int, n_tau: int, rows: dict, rate_gflops: float, note: str = "") -> dict:
    """A-priori operation count, its floor at ``rate_gflops``, and the time it implies at the measured rate × floor
    ratio of the largest measured row (if any); then every route (U formed or streamed; spectral edges or none)
    priced with that row's Mehler order and Krylov depth (blocks of d): operations, floor and memory, so the
    row says which route meets which target and why."""
    from rfdiff import study
    from rfdiff.model import RFConfig

    cfg = RFConfig(d=d, p=p, n=n)
    opts = study.StudyOptions(taus=study.TauGrid(0.1, 1e7, n_tau), theory=False)
    cost = study.route_cost(cfg, opts, memory=1 << 50)     # the route as if memory were no limit
    out = {"p": p, "n": n, "d": d, "estimate_only": True, "route": cost["method"], "spectrum": cost["spectrum_method"],
           "flops": cost["total"], "memory_estimate_gb": cost["bytes"] / 1e9,
           "fits_here": cost["bytes"] <= study.available_memory(), "rate_gflops": rate_gflops,
           "floor_s": cost["total"] / (rate_gflops * 1e9), **({"note": note} if note else {})}
    measured = [r for r in rows.values() if not r.get("estimate_only")]
    if not measured:
        return out
    ref = max(measured, key=lambda r: r["p"])
    rate = 1e9 * np.mean(ref["gemm_gflops_before_after"])
    out["extrapolated_s"] = out["flops"] / rate * ref["ratio_to_floor"]
    out["extrapolated_from"] = f"p={ref['p']}: {ref['gemm_gflops_before_after']} GF/s, ratio {ref['ratio_to_floor']:.2f}"
    order = int(ref["mehler_order"])
    blocks = int(re.search(r"\((\d+) blocks", ref["krylov"]).group(1))
    out["routes_at"] = f"Mehler order {order} and {blocks} Krylov blocks of d (measured at p={ref['p']})"
    out["routes"] = {}
    for method in ("lanczos", "streamed"):
        for spectrum in ("none", "edges"):
            o = dataclasses.replace(opts, method=method, spectrum=spectrum)
            c = study.route_cost(cfg, o, order=order, pop_order=order, basis=min(p, blocks * d), memory=1 << 50)
            mem = study.memory_estimate(p, n, d, method, max_order=order, basis_blocks=blocks, n_tau=n_tau + 1,
                                        spectrum=spectrum)
            out["routes"][f"{method}/{spectrum}"] = {
                "flops": c["total"], "floor_s": c["total"] / (rate_gflops * 1e9),
                "extrapolated_s": c["total"] / rate * ref["ratio_to_floor"], "memory_estimate_gb": mem / 1e9,
                "stages_flops": {k: c[k] for k in ("matrices", "dynamics", "spectrum", "curves")}}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p", type=int, default=25600)
    ap.add_argument("--n", type=int, default=1600)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--n-tau", type=int, default=161)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--spectrum", default="auto", help="the route's spectrum (rfdiff.study.SPECTRA; default auto)")
    ap.add_argument("--lanczos-steps", type=int, default=64, help="at most this many Krylov blocks for the curves")
    ap.add_argument("--estimate-only", action="store_true", help="print the a-priori cost; run nothing")
    ap.add_argument("--rate-gflops", type=float, default=127.0,
                    help="GEMM rate for --estimate-only's floor (default: the quiet 2-core rate of bench_main.json)")
    ap.add_argument("--note", default="", help="a remark stored with an --estimate-only row")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_large_p.json"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    rows = json.loads(out.read_text()) if out.exists() else {}
    key = f"p{args.p}_n{args.n}_d{args.d}" + ("_estimate" if args.estimate_only else "") + \
        ("" if args.spectrum == "auto" else f"_{args.spectrum}") + ("" if args.lanczos_steps == 64 else f"_steps{args.lanczos_steps}")
    row = estimate(args.p, args.n, args.d, args.n_tau, rows, args.rate_gflops, args.note) if args.estimate_only else \
        measure(args.p, args.n, args.d, args.n_tau, args.seed, args.spectrum, args.lanczos_steps)
    rows[key] = row
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, indent=1, default=float))
    tmp.replace(out)
    print(json.dumps(row, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
