#!/usr/bin/env python
"""Table of τ_gen and τ_mem from saved main-job results, re-read with thresholds of your choice.

Example: rfdiff table results/rf_*.json --gen-frac 0.05 --mem-frac 0.3
         (or: python rfdiff_analysis/timescales_table.py results/rf_*.json)
Loads each saved StudyResult (<run>.json + <run>.npz), re-extracts the timescales from the stored
curves and spectra by the same rule on every side (simulation, finite-d theory, d → ∞ theory;
docs/theory.md §6.1–6.2) and prints one row per run and side, sorted by n, then p; --csv writes
the same table.
"""
from __future__ import annotations

import argparse
import csv
import io as io_text
import sys
from pathlib import Path

from rfdiff_cli import common

COLUMNS = ("tau_gen", "tau_mem", "tau_mem_abs", "min_score_error", "final_gap", "lambda_mem", "tau_mem_spectral")


def parse_args(argv=None):
    ap = common.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="result files written by rfdiff run (<run>.json or <run>)")
    common.add_threshold_flags(ap)
    ap.add_argument("--csv", default=None, help="also write the table as CSV here")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --csv file")
    args = ap.parse_args(argv)
    if args.csv and Path(args.csv).exists() and not args.overwrite:
        raise common.UsageError(f"--csv: {args.csv} exists (pass --overwrite to replace it)")
    if args.csv:
        common.check_folder(Path(args.csv).resolve().parent, "--csv")
    return args


def rows_from(paths, thresholds) -> list[dict]:
    """One row per (run, side): the timescales of its stored curves and spectrum under ``thresholds``."""
    from rfdiff import results, timescales
    from rfdiff.study import StudyResult
    rows = []
    for path in paths:
        stem = Path(path[: -len(".json")] if str(path).endswith(".json") else path)
        try:
            res = results.load(stem)
        except results.CorruptResult as err:
            raise common.UsageError(f"results: cannot read {stem} ({err})") from None
        if not isinstance(res, StudyResult):
            raise common.UsageError(f"results: {stem} holds a {type(res).__name__}, not a main-job StudyResult")
        cfg = res.study.config
        for label, side in (("simulation", res.simulation), ("theory", res.theory), ("theory d→∞", res.theory_d_inf)):
            if side is None:
                continue
            ts = timescales.extract(side.curves, thresholds, side.spectrum, n=cfg.n, p=cfg.p, d=cfg.d, t=cfg.t)
            rows.append({"run": stem.name, "side": label, "d": cfg.d, "p": cfg.p, "n": cfg.n, "t": cfg.t,
                         **{c: getattr(ts, c) for c in COLUMNS}})
    return sorted(rows, key=lambda r: (r["n"], r["p"], r["run"]))


@common.guarded
def main(argv=None) -> int:
    args = parse_args(argv)
    thresholds = common.configs(lambda: common.thresholds(args))
    rows = rows_from(args.results, thresholds)
    cols = list(rows[0])
    cell = lambda v: v if isinstance(v, str) else common.fmt(v)  # noqa: E731
    widths = [max(len(c), *(len(cell(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(cell(r[c]).rjust(w) for c, w in zip(cols, widths)))
    if args.csv:
        from rfdiff import io

        buf = io_text.StringIO(newline="")
        w = csv.DictWriter(buf, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
        try:  # atomic, and never over a file created since the check in parse_args unless --overwrite
            io.atomic_write(Path(args.csv), lambda fh: fh.write(buf.getvalue().encode()), overwrite=args.overwrite)
        except FileExistsError:
            raise common.UsageError(f"--csv: {args.csv} exists (pass --overwrite to replace it)") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
