#!/usr/bin/env python
"""Is the Krylov basis of the large-p units enough? The Krylov route at a given number of blocks against the
dense route on the same draw, at ψ_p = 256 (the large-p study's units; docs/finite_size.md).

Example: nice -n 19 python benchmarks/bench_krylov_steps.py --ds 8,16 --psi-ns 2,16
         python benchmarks/bench_krylov_steps.py --ds 32 --psi-ns 16 --cache /work/cache/large_p
For each (d, ψ_n) the unit of ``rfdiff.pipelines.large_p.plan`` (seed 0) runs by block Krylov with
``--steps`` blocks (the study's default, 64) and by the dense route (or the dense unit is read from the
large-p cache, ``--cache``, where the plan ran it densely); the row gives the Krylov basis, whether its
a-posteriori change met the tolerance, and the relative differences of the curves (max over the τ grid)
and of τ_mem and τ_gen. Rows are merged into benchmarks/results/bench_krylov_steps.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def row(d: int, psi_n: float, steps: int, cache: str | None) -> dict:
    from rfdiff import sweep
    from rfdiff.cache import unit_key
    from rfdiff.pipelines import large_p as lp
    from rfdiff.results import CorruptResult
    from rfdiff.study import run

    lab = lp.Label(d, 256.0, float(psi_n), "exact", 0)
    unit = lp.plan(lp.PRESETS["full"].restrict((d,)))[lab]
    ref, source = None, "dense route, this run"
    if cache:
        try:
            ref = sweep.Cache(cache, "large_p").load(unit_key("large_p", unit))
            source = f"large-p cache ({ref.diagnostics['method']} route)"
        except CorruptResult:
            ref = None
    t0 = time.perf_counter()
    if ref is None:
        ref = run(unit.config, dataclasses.replace(unit.options, method="dense", spectrum="exact", theory=False))
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    kr = run(unit.config, dataclasses.replace(unit.options, method="lanczos", spectrum="none", theory=False,
                                              lanczos_max_steps=steps))
    t_kr = time.perf_counter() - t0
    dyn = kr.diagnostics["dynamics"]
    out = {"d": d, "p": unit.config.p, "n": unit.config.n, "psi_n": psi_n, "steps": steps,
           "basis": dyn["basis_size"], "basis_over_p": dyn["basis_size"] / unit.config.p,
           "converged": dyn["converged"], "change_last_block": dyn["change_last_block"], "reference": source,
           "seconds_krylov": t_kr, "seconds_reference": t_ref}
    for k in ("train_loss", "test_loss", "score_error"):
        a, b = getattr(kr.simulation.curves, k), getattr(ref.simulation.curves, k)
        out[f"{k}_max_rel_diff"] = float(np.max(np.abs(a - b) / np.abs(b)))
    for k in ("tau_mem", "tau_gen"):
        a, b = getattr(kr.simulation.timescales, k), getattr(ref.simulation.timescales, k)
        out[k] = {"krylov": a, "reference": b, "rel_diff": a / b - 1}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ds", default="8,16", help="comma-separated d of the large-p preset")
    ap.add_argument("--psi-ns", default="2,16", help="comma-separated ψ_n of the preset")
    ap.add_argument("--steps", type=int, default=64, help="Krylov blocks (the study's lanczos_max_steps)")
    ap.add_argument("--cache", default=None, help="large-p cache folder to read the dense units from")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_krylov_steps.json"))
    args = ap.parse_args(argv)
    try:
        ds = [int(x) for x in args.ds.split(",")]
        pns = [float(x) for x in args.psi_ns.split(",")]
    except ValueError:
        ap.error("--ds and --psi-ns take comma-separated numbers")
    if args.steps < 1:
        ap.error("--steps must be a positive integer")
    out = Path(args.out)
    rows = json.loads(out.read_text()) if out.exists() else {}
    for d in ds:
        for pn in pns:
            r = row(d, pn, args.steps, args.cache)
            rows[f"d{d}_psin{pn:g}_steps{args.steps}"] = r
            print(f"d={d} ψ_n={pn:g}: basis {r['basis']} ({r['basis_over_p']:.2f} p), converged {r['converged']} "
                  f"(change {r['change_last_block']:.1e}); τ_mem {r['tau_mem']['rel_diff']:+.1e}, "
                  f"τ_gen {r['tau_gen']['rel_diff']:+.1e}, curves ≤ "
                  f"{max(r[k + '_max_rel_diff'] for k in ('train_loss', 'test_loss', 'score_error')):.1e}", flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
