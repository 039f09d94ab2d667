#!/usr/bin/env python
"""Summarise main-job results (``rfdiff run`` / experiments/rf_timescales.py, e.g. from
benchmarks/gpu_check.sh) into one JSON and a table.

Example: python benchmarks/summarize_runs.py results/gpu_check/runs --out results/gpu_check/gpu_check.json
Each ``<name>.json`` + ``<name>.npz`` pair in the folder is read with ``rfdiff.results.load``; other
files are skipped. GPU/CPU speed-ups are ratios of total times of runs with the same p and n in the
folder (measured on the same machine in one gpu_check.sh run).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def summarize(folder: Path) -> dict:
    from rfdiff.results import CorruptResult, load
    from rfdiff.study import StudyResult

    runs, skipped = [], []
    for f in sorted(folder.glob("*.json")):
        stem = f.with_suffix("")
        try:
            res, meta = load(stem, with_meta=True)
        except CorruptResult as err:
            skipped.append(f"{f.name}: {err}")
            continue
        if not isinstance(res, StudyResult):
            skipped.append(f"{f.name}: a {type(res).__name__}, not a main-job result")
            continue
        cfg, sim = res.config, res.simulation
        mem = meta.get("memory") or {}
        dev = mem.get("device") or {}
        final = sim.curves.final()
        runs.append({
            "name": stem.name, "p": cfg.p, "n": cfg.n, "d": cfg.d,
            "backend": meta.get("jax_backend"), "devices": meta.get("jax_devices"),
            "cpu_count": meta.get("cpu_count"), "method": res.diagnostics.get("method"),
            "timings_s": dict(res.timings),
            "peak_rss_GB": (mem.get("peak_rss_bytes") or 0) / 1e9,
            "device_peak_GB": (dev.get("peak_bytes_in_use") or 0) / 1e9,
            "tau_gen": sim.timescales.tau_gen, "tau_mem": sim.timescales.tau_mem,
            "final_train_loss": final.get("train_loss"), "final_test_loss": final.get("test_loss"),
            "versions": meta.get("versions"), "git_commit": meta.get("git_commit"),
        })
    ratios = []
    for g in runs:
        for c in runs:
            if g["backend"] != "cpu" and c["backend"] == "cpu" and (g["p"], g["n"]) == (c["p"], c["n"]):
                ratios.append({"p": g["p"], "n": g["n"], "gpu": g["name"], "cpu": c["name"],
                               "cpu_count": c["cpu_count"],
                               "speedup_total": c["timings_s"]["total"] / g["timings_s"]["total"]})
    return {"runs": runs, "speedups": ratios, "skipped": skipped}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="folder holding main-job <name>.json + <name>.npz results")
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
              + "  ".join(f"{k} {v:.1f}" for k, v in t.items() if k != "total")
              + f"  rss {r['peak_rss_GB']:.1f} GB  device {r['device_peak_GB']:.1f} GB  τ_mem {r['tau_mem']:.6g}")
    for q in s["speedups"]:
        print(f"speed-up p={q['p']}: {q['cpu']} ({q['cpu_count']} cores) / {q['gpu']} = {q['speedup_total']:.2f}x")
    for m in s["skipped"]:
        print(f"skipped {m}")
    if args.out:
        from rfdiff.io import save_json
        save_json(args.out, s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
