#!/usr/bin/env python
"""Summarise main-job result JSONs (e.g. from benchmarks/gpu_check.sh) into one JSON and a table.

Example: python benchmarks/summarize_runs.py results/gpu_check/runs --out benchmarks/results/gpu_h200.json
GPU/CPU speed-ups are ratios of total times of runs with the same p and n in the folder.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def summarize(folder: Path) -> dict:
    runs = []
    for f in sorted(folder.glob("*.json")):
        r = json.loads(f.read_text())
        if "timings_s" not in r:
            continue
        m = r.get("memory") or {}
        dev = m.get("device") or {}
        runs.append({
            "name": r["name"], "p": r["config"]["p"], "n": r["config"]["n"], "d": r["config"]["d"],
            "backend": r["metadata"]["jax_backend"], "devices": r["metadata"]["jax_devices"],
            "cpu_count": r["metadata"]["cpu_count"], "method": r["method"], "timings_s": r["timings_s"],
            "peak_rss_GB": (m.get("peak_rss_bytes") or 0) / 1e9,
            "device_peak_GB": (dev.get("peak_bytes_in_use") or 0) / 1e9,
            "tau_gen": r["timescales"]["tau_gen"]["tau_gen"], "tau_mem": r["timescales"]["tau_mem"]["tau_mem"],
            "final_train_loss": r["final"]["train_loss"], "final_test_loss": r["final"]["test_loss"],
            "versions": r["metadata"]["versions"], "git_commit": r["metadata"].get("git_commit"),
        })
    ratios = []
    for g in runs:
        for c in runs:
            if g["backend"] != "cpu" and c["backend"] == "cpu" and (g["p"], g["n"]) == (c["p"], c["n"]):
                ratios.append({"p": g["p"], "n": g["n"], "gpu": g["name"], "cpu": c["name"],
                               "cpu_count": c["cpu_count"],
                               "speedup_total": c["timings_s"]["total"] / g["timings_s"]["total"]})
    return {"runs": runs, "speedups": ratios}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="folder holding main-job <name>.json results")
    ap.add_argument("--out", default=None, help="write the summary JSON here")
    args = ap.parse_args(argv)
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"error: {folder} is not a folder", file=sys.stderr)
        return 2
    s = summarize(folder)
    for r in s["runs"]:
        t = r["timings_s"]
        print(f"{r['name']:<24} {r['backend']:>4} {r['method']:>8} p={r['p']:<6} total {t['total']:7.1f}s  "
              + "  ".join(f"{k.split(' ')[0]} {v:.1f}" for k, v in t.items() if k != "total")
              + f"  rss {r['peak_rss_GB']:.1f} GB  device {r['device_peak_GB']:.1f} GB  τ_mem {r['tau_mem']:.6g}")
    for q in s["speedups"]:
        print(f"speed-up p={q['p']}: {q['cpu']} ({q['cpu_count']} cores) / {q['gpu']} = {q['speedup_total']:.2f}x")
    if args.out:
        from rfdiff.io import save_json
        save_json(args.out, s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
