#!/usr/bin/env python
"""Regenerate the paper's random-features figures, the finite-size ladder and figures/REPORT.md in one sweep.

Example: python rfdiff_cli/figures.py --quick                 (or: rfdiff figures --quick)
         python rfdiff_cli/figures.py --only finite_size_scaling,min_score --scheduler tcp://host:8786
Every unit of work (one simulation + theory, one density, one iterative training) runs on Dask
(a local cluster by default) and is cached in --out by a hash of its whole configuration, so a
rerun computes only what changed and an interrupted run resumes. Each figure writes
<figdir>/<figure>.png/.pdf and its key numbers to <figdir>/manifest/<figure>.json (one file per
figure: concurrent runs cannot lose each other's entries); the report is assembled from them.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rfdiff_cli import common

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    from rfdiff.pipelines.paper import FIGURES
    ap = common.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a few minutes on 2 cores)")
    ap.add_argument("--only", default=None, help=f"comma-separated subset of: {','.join(FIGURES)}")
    ap.add_argument("--out", default=str(ROOT / "results" / "figures_cache"), help="unit cache folder")
    ap.add_argument("--figdir", default=str(ROOT / "figures"), help="figure folder")
    ap.add_argument("--no-report", action="store_true", help="skip figures/REPORT.md")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ap.add_argument("--no-compile-cache", action="store_true", help="do not use JAX's persistent compilation cache")
    common.add_sweep_flags(ap)
    args = ap.parse_args(argv)
    args.figures = FIGURES if not args.only else tuple(s.strip() for s in args.only.split(",") if s.strip())
    bad = [f for f in args.figures if f not in FIGURES]
    if bad:
        raise common.UsageError(f"--only: unknown figure(s) {', '.join(bad)}; valid: {', '.join(FIGURES)}")
    return args


@common.guarded
def main(argv=None) -> int:
    t_all = time.perf_counter()
    args = parse_args(argv)
    cluster = common.cluster_from(args)
    mode = "quick" if args.quick else "full"
    cache, figdir = common.writable_folder(Path(args.out) / mode, "--out"), common.writable_folder(args.figdir, "--figdir")
    common.setup(args)
    from rfdiff import io, results, sweep
    from rfdiff.pipelines import paper
    from rfdiff_analysis import plots_paper, report
    P = paper.PRESETS[mode]
    todo = {}
    for f in args.figures:
        for u in paper.units(f, P):
            todo.setdefault(sweep.unit_key("paper", u), u)
    units = list(todo.values())
    print(f"{len(args.figures)} figure(s), {len(units)} distinct units ({mode} sizes)", file=sys.stderr)
    with common.progress_bar(args, len(units), "units", "unit") as bar:
        rep = sweep.run_sweep(paper.run_unit, units, cache_dir=cache, cluster=cluster, kind="paper",
                              progress=lambda done, total: bar.update(done - bar.n))
    for fail in rep.failures:
        print(f"unit failed: {fail.unit}\n{fail.traceback}", file=sys.stderr)
    common.report_warnings(rep)
    got = {k: r for k, r in zip(rep.keys, rep.results)}
    get = lambda u: got.get(sweep.unit_key("paper", u))  # noqa: E731
    meta = io.run_metadata()
    for f in args.figures:
        t0 = time.perf_counter()
        summary = paper.summarize(f, P, get)
        files = plots_paper.draw(f, P, summary, get, figdir)
        entry = {"figure": f, "mode": mode, "sizes": P.get(f, P["ladder"] if f == "finite_size_scaling" else None),
                 "command": f"python rfdiff_cli/figures.py{' --quick' if args.quick else ''} --only {f}",
                 "files": [p.name for p in files], "summary": summary}
        results.save(entry, figdir / "manifest" / f, meta={"git_commit": meta["git_commit"],
                                                          "versions": meta["versions"],
                                                          "seconds": time.perf_counter() - t0})
        print(f"{f}: {', '.join(p.name for p in files)}")
    print(f"{len(units)} units ({rep.n_computed} computed, {rep.n_loaded} from the cache, {len(rep.failures)} failed) "
          f"on {rep.backend} in {time.perf_counter() - t_all:.1f} s -> {figdir}")
    if not args.no_report:
        print(f"report: {report.write_report(figdir)}")
    return 1 if rep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
