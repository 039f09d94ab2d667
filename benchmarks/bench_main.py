#!/usr/bin/env python
"""The main job and the paper's Fig. 5 point against their floor, measured in one run on this machine.

Example: python benchmarks/bench_main.py            (about 4 minutes on 2 cores)
Measured, each in a fresh process:
  * the floor: one float64 eigendecomposition of a 4096 × 4096 symmetric matrix (numpy, LAPACK's
    divide and conquer; median of 3), the eigenvalues alone, and the machine's float64 GEMM rate, from
    which the p²·n·(K+1) flops of the Mehler products of U give a second floor;
  * the main job ``rfdiff run --p 4096 --n 512`` cold (an empty compilation cache) and warm (the same
    cache, second run), ``--repeats`` times each (default 3), and the ratios of the median runs to the
    eigendecomposition, with their stage times;
  * the Fig. 5 point ``rfdiff run --d 100 --p 6400 --n 800`` (warm and cold), and its stage times.
Writes results/bench_main.json (``--out``; results/bench_main_quick.json with ``--quick``); the
committed copy is benchmarks/results/bench_main.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FLOOR = r"""
import json, sys, time, numpy as np
p = int(sys.argv[1]); rng = np.random.default_rng(0)
A = rng.standard_normal((p, p)); A = A @ A.T / p
out = {}
for name, f in (("eigh", np.linalg.eigh), ("eigvalsh", np.linalg.eigvalsh), ("gemm", lambda a: a @ a)):
    ts = []
    for _ in range(3):
        t0 = time.perf_counter(); f(A); ts.append(time.perf_counter() - t0)
    out[name] = sorted(ts)[1]
out["gemm_gflops"] = 2 * p**3 / out["gemm"] / 1e9
print(json.dumps(out))
"""


def floor(p: int) -> dict:
    r = subprocess.run([sys.executable, "-c", FLOOR, str(p)], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def main_job(args: list[str], cache: str, out: str, name: str) -> dict:
    """One ``rfdiff run`` in a fresh process: wall time, and the stage timings and route from its JSON."""
    env = dict(os.environ, RFDIFF_CACHE=cache)
    cmd = [sys.executable, str(ROOT / "experiments" / "rf_timescales.py"), *args, "--no-progress", "--out", out,
           "--name", name, "--overwrite"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    doc = json.loads((Path(out) / f"{name}.json").read_text())
    res = doc["result"]
    return {"wall_s": wall, "stages_s": res["timings"], "route": res["diagnostics"]["method"],
            "dynamics": res["diagnostics"].get("dynamics"), "mehler_order": res["diagnostics"]["matrices"]["train_order"],
            "command": "rfdiff run " + " ".join(args)}


def _median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (its stage times with it), and every run's wall time."""
    mid = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    return {**mid, "wall_s_runs": [r["wall_s"] for r in runs]}


def run(quick: bool, repeats: int = 3) -> dict:
    p_floor = 2048 if quick else 4096
    main_args = ["--p", "1024", "--n", "128", "--d", "16"] if quick else ["--p", "4096", "--n", "512"]
    fig5_args = ["--p", "2048", "--n", "256", "--d", "32"] if quick else ["--d", "100", "--p", "6400", "--n", "800"]
    out = {"floor": floor(p_floor), "floor_p": p_floor, "repeats": repeats}
    with tempfile.TemporaryDirectory(prefix="bench_main_") as tmp:
        cache = os.path.join(tmp, "cache")
        colds, warms = [], []
        for _ in range(repeats):              # each cold run starts from an empty cache, each warm run follows one
            shutil.rmtree(cache, ignore_errors=True)
            colds.append(main_job(main_args, cache, tmp, "main"))
            warms.append(main_job(main_args, cache, tmp, "main"))
        out["main_cold"], out["main_warm"] = _median_run(colds), _median_run(warms)
        out["fig5_warm"] = main_job(fig5_args, cache, tmp, "fig5")
        shutil.rmtree(cache)
        out["fig5_cold"] = main_job(fig5_args, cache, tmp, "fig5")
    e = out["floor"]["eigh"]
    out["ratio_main_cold_over_eigh"] = out["main_cold"]["wall_s"] / e
    out["ratio_main_warm_over_eigh"] = out["main_warm"]["wall_s"] / e
    n, K = int(main_args[main_args.index("--n") + 1]), out["main_warm"]["mehler_order"]
    p = int(main_args[main_args.index("--p") + 1])
    flops = p * p * n * (K + 1)                     # upper-triangle blocks: p²/2 entries × 2 flops × (K + 1) products
    out["mehler_floor_s"] = flops / (out["floor"]["gemm_gflops"] * 1e9)
    out["mehler_flops"] = flops
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="cold and warm main-job runs (the median is reported; default 3: the run-to-run spread "
                         "on a shared 2-core machine is ±0.5 s)")
    ap.add_argument("--out", default=None, help="output JSON (default results/bench_main.json; "
                                                 "results/bench_main_quick.json with --quick)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.out is None:
        args.out = str(ROOT / "results" / f"bench_main{'_quick' if args.quick else ''}.json")
    from rfdiff import io
    from rfdiff_cli.common import run_metadata
    load0 = os.getloadavg()
    res = run(args.quick, args.repeats)
    res.update(quick=args.quick, loadavg_start=load0, loadavg_end=os.getloadavg(), metadata=run_metadata())
    io.save_json(args.out, res)
    f = res["floor"]
    print(f"floor (p = {res['floor_p']}): eigh {f['eigh']:.2f} s, eigenvalues alone {f['eigvalsh']:.2f} s, "
          f"GEMM {f['gemm_gflops']:.0f} GFLOP/s; Mehler products of U: {res['mehler_flops']:.2e} flops = "
          f"{res['mehler_floor_s']:.2f} s at that rate")
    for key in ("main_cold", "main_warm", "fig5_warm", "fig5_cold"):
        r = res[key]
        stages = ", ".join(f"{k} {v:.2f}" for k, v in r["stages_s"].items())
        runs = f" (median of {', '.join(f'{w:.2f}' for w in r['wall_s_runs'])})" if "wall_s_runs" in r else ""
        print(f"{key:<10} {r['wall_s']:6.2f} s wall{runs} ({r['route']}): {stages}")
    print(f"main job / eigh: cold {res['ratio_main_cold_over_eigh']:.2f}, warm {res['ratio_main_warm_over_eigh']:.2f}; "
          f"load average {res['loadavg_start'][0]:.2f} → {res['loadavg_end'][0]:.2f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
