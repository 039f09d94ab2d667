#!/usr/bin/env python
"""Table of τ_gen and τ_mem from saved main-job results, with thresholds of your choice.

Example: python analysis/timescales_table.py results/*.json --gen-frac 0.05 --mem-frac 0.3
Reads each <run>.json and its <run>.npz (curves), re-extracts the timescales and prints one row
per run (sorted by n, then p); --csv writes the same table.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from rfdiff import timescales


def rows_from(paths, gen_frac, mem_frac, mem_abs):
    rows = []
    for p in paths:
        p = Path(p)
        res = json.loads(p.read_text())
        curves = np.load(p.with_name(p.name[: -len(".json")] + ".npz"))
        g = timescales.tau_gen(curves["tau"], curves["score_error"], gen_frac)
        m = timescales.tau_mem(curves["tau"], curves["gen_gap"], mem_frac, mem_abs)
        th = res.get("theory", {})
        cfg = res["config"]
        rows.append({"run": res["name"], "d": cfg["d"], "p": cfg["p"], "n": cfg["n"], "t": cfg["t"],
                     "tau_gen": g["tau_gen"], "tau_mem": m["tau_mem"], "tau_mem_abs": m["tau_mem_abs"],
                     "tau_gen_theory": th.get("tau_gen"), "tau_mem_theory": th.get("tau_mem"),
                     "min_score_error": g["min"], "final_gap": m["final_gap"]})
    return sorted(rows, key=lambda r: (r["n"], r["p"], r["run"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="result JSON files written by experiments/rf_timescales.py")
    ap.add_argument("--gen-frac", type=float, default=0.1)
    ap.add_argument("--mem-frac", type=float, default=0.5)
    ap.add_argument("--mem-abs", type=float, default=0.05)
    ap.add_argument("--csv", default=None, help="also write the table as CSV here")
    args = ap.parse_args(argv)
    try:
        rows = rows_from(args.results, args.gen_frac, args.mem_frac, args.mem_abs)
    except (OSError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cols = list(rows[0])
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("—" if v is None else str(v))
    widths = [max(len(c), *(len(fmt(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(fmt(r[c]).rjust(w) for c, w in zip(cols, widths)))
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
