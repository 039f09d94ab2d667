#!/usr/bin/env python
"""Regenerate the paper's random-features figures, the finite-size ladder and figures/REPORT.md in one sweep.

Example: rfdiff figures --quick
         rfdiff figures --only finite_size_scaling,min_score --scheduler tcp://host:8786
Every unit of work (one simulation + theory, one density, one iterative training) runs on Dask
(a local cluster by default) and is cached in --out by a hash of its whole configuration, so a
rerun computes only what changed and an interrupted run resumes. Each figure writes
<figdir>/<figure>.png/.pdf and its key numbers to <figdir>/manifest/<figure>.json (one file per
figure: concurrent runs cannot lose each other's entries); the report is assembled from them.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from rfdiff_cli import common

# the figures of rfdiff.pipelines.paper.FIGURES (named here so that --help and flag errors need no JAX;
# tests/cli/test_figures.py checks that the two agree)
FIGURES = ("finite_size_scaling", "spectrum", "learning_curves", "min_score", "sigma_x", "adam", "scaling",
           "heatmap", "phase", "procedure")


def parse_args(argv=None):
    ap = common.Parser(prog="rfdiff figures", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes (a few minutes on 2 cores)")
    ap.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(FIGURES)} (default: all)")
    ap.add_argument("--out", default="results/figures_cache",
                    help="unit cache folder (relative paths: from the current folder)")
    ap.add_argument("--figdir", default=None,
                    help="figure and report folder (default: figures, or figures_quick with --quick)")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace figures, manifest entries and the report already in --figdir")
    ap.add_argument("--no-report", action="store_true", help="skip <figdir>/REPORT.md")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ap.add_argument("--no-compile-cache", action="store_true", help="do not use JAX's persistent compilation cache")
    common.add_sweep_flags(ap)
    args = ap.parse_args(argv)
    args.figures = FIGURES if not args.only else tuple(s.strip() for s in args.only.split(",") if s.strip())
    bad = [f for f in args.figures if f not in FIGURES]
    if bad:
        raise common.UsageError(f"--only: unknown figure(s) {', '.join(bad)}; valid: {', '.join(FIGURES)}")
    if args.figdir is None:
        args.figdir = "figures_quick" if args.quick else "figures"
    existing = [Path(args.figdir) / "manifest" / f"{f}.json" for f in args.figures]
    existing = [p for p in existing if p.exists()]
    if not args.no_report and (Path(args.figdir) / "REPORT.md").exists():
        existing.append(Path(args.figdir) / "REPORT.md")
    if existing and not args.overwrite:
        raise common.UsageError(f"--figdir: {args.figdir} already holds {existing[0]}"
                                f"{f' and {len(existing) - 1} more' if len(existing) > 1 else ''} "
                                f"(pass --overwrite to replace them, or choose another --figdir)")
    return args


@common.guarded
def main(argv=None) -> int:
    t_all = time.perf_counter()
    args = parse_args(argv)
    cluster = common.cluster_from(args)
    mode = "quick" if args.quick else "full"
    cache, figdir = common.writable_folder(Path(args.out) / mode, "--out"), common.writable_folder(args.figdir, "--figdir")
    common.setup(args)
    from rfdiff import results, sweep
    from rfdiff.pipelines import paper
    from rfdiff_analysis import plots_paper, report
    P = paper.PRESETS[mode]
    try:
        report.check_one_preset(figdir, P.name)
    except report.MixedPresets as err:
        raise common.UsageError(f"--figdir: {err}") from None
    key = lambda u: sweep.unit_key("paper", u)  # noqa: E731
    plans = {f: paper.plan(f, P) for f in args.figures}      # the plan is computed once: {label: unit}
    todo = {}
    for plan in plans.values():
        for u in plan.values():
            todo.setdefault(key(u), u)
    units = list(todo.values())
    print(f"{len(args.figures)} figure(s), {len(units)} distinct units ({mode} sizes)", file=sys.stderr)
    with common.progress_bar(args, len(units), "units", "unit") as bar, cluster.client() as client:
        rep = sweep.run_sweep(paper.run_unit, units, cache=sweep.Cache(cache, "paper"), client=client,
                              progress=lambda done, total: bar.update(done - bar.n))
    for fail in rep.failures:
        print(f"unit failed: {fail.unit}\n{fail.traceback}", file=sys.stderr)
    common.report_warnings(rep)
    got = {k: r for k, r in zip(rep.keys, rep.results)}
    meta = common.run_metadata()
    missing = []
    for f in args.figures:
        t0 = time.perf_counter()
        res = paper.Results(f, plans[f], {label: got.get(key(u)) for label, u in plans[f].items()})
        try:
            summary = paper.summarize(f, P, res)
        except paper.MissingResult as err:
            missing.append(f)
            print(f"{err} ({len(res.missing)} planned unit(s) without a result): figure not drawn", file=sys.stderr)
            continue
        files = plots_paper.draw(f, P, summary, res, figdir)
        entry = {"figure": f, "preset": P.name, "sizes": P.sizes(f),
                 "command": f"rfdiff figures{' --quick' if args.quick else ''} --only {f}",
                 "files": [p.name for p in files], "summary": summary}
        results.save(entry, figdir / "manifest" / f, meta={"git_commit": meta["git_commit"],
                                                          "versions": meta["versions"],
                                                          "seconds": time.perf_counter() - t0})
        print(f"{f}: {', '.join(p.name for p in files)}")
    print(f"{len(units)} units ({rep.n_computed} computed, {rep.n_loaded} from the cache, {len(rep.failures)} failed) "
          f"on {rep.backend} in {time.perf_counter() - t_all:.1f} s -> {figdir}")
    if not args.no_report:
        print(f"report: {report.write_report(figdir)}")
    return 1 if rep.failures or missing else 0


if __name__ == "__main__":
    sys.exit(main())
