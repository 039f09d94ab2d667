#!/usr/bin/env python
"""The large-p study: does the finite network follow τ_mem ∝ n at p ≫ n as d grows? (docs/finite_size.md)

Example: rfdiff large-p --quick --serial
         nice -n 19 rfdiff large-p --out /work/cache/large_p --ds 16,32 --serial
         rfdiff large-p --out /shared/cache/large_p --scheduler tcp://host:8786
The exact model and its Gaussian-equivalent control at ψ_p = 256 (ψ_p = 512 added with
--preset full_512), ψ_n ∈ {2, 4, 8, 16}, d ∈ {8, 12, 16, 32, 64, 100}, t = 0.1, 5 seeds
(rfdiff.pipelines.large_p). The plan size and its estimated time are printed before anything runs
(--estimate-only stops there); the units run small d first, one rung after the other, each cached
in --out by a hash of its whole configuration, so an interrupted sweep resumes. --ds restricts the
study to some rungs (the report then says what did not run and what it would take, and gives the
theory's predictions for the rungs not all in the cache, written before they run). Writes
<figdir>/<name>.png/.pdf (local exponent vs 1/d per ψ_n pair, fits, the theory at 0),
<figdir>/REPORT_<name>.md and <figdir>/<name>_summary.json.
"""
from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from rfdiff_cli import common

KIND = "large_p"     # cache sub-folder of the units
PRESET_NAMES = ("full", "full_512", "quick")


def parse_args(argv=None):
    ap = common.Parser(prog="rfdiff large-p", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (the 'quick' preset; a smoke test)")
    ap.add_argument("--preset", default=None, choices=PRESET_NAMES, help="sizes (default: full, or quick with --quick)")
    ap.add_argument("--ds", default=None, help="comma-separated subset of the preset's d values (default: all)")
    ap.add_argument("--out", default="results/large_p_cache", help="unit cache folder (persistent; shared by the workers)")
    ap.add_argument("--figdir", default="figures", help="folder of the figure, the report and the summary")
    ap.add_argument("--name", default="large_p", help="stem of the figure, report and summary files")
    ap.add_argument("--overwrite", action="store_true", help="replace the figure, report and summary of that name")
    ap.add_argument("--estimate-only", action="store_true", help="print the plan size and time estimate, run nothing")
    ap.add_argument("--report-only", action="store_true",
                    help="run nothing: report on the seeds complete in the cache (every ψ_n and model of a rung)")
    ap.add_argument("--no-predictions", action="store_true",
                    help="skip the theory's predictions for the rungs not all in the cache (a section of the report)")
    ap.add_argument("--no-plot", action="store_true", help="skip the figure")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ap.add_argument("--no-compile-cache", action="store_true", help="do not use JAX's persistent compilation cache")
    common.add_sweep_flags(ap)
    args = ap.parse_args(argv)
    if args.quick and args.preset not in (None, "quick"):
        raise common.UsageError(f"--quick: conflicts with --preset {args.preset}")
    args.preset = args.preset or ("quick" if args.quick else "full")
    try:
        args.ds = None if args.ds is None else tuple(int(x) for x in args.ds.split(",") if x.strip())
    except ValueError:
        raise common.UsageError(f"--ds: needs comma-separated integers, got {args.ds!r}") from None
    return args


def _outputs(args) -> list[Path]:
    f = Path(args.figdir)
    return [f / f"REPORT_{args.name}.md", f / f"{args.name}_summary.json"] + \
        ([] if args.no_plot else [f / f"{args.name}.pdf"])


def _hours(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 3600 else (f"{s / 60:.0f} min" if s >= 60 else f"{s:.0f} s")


def _cached(cache, plan):
    """{label: result} of the units of ``plan`` already in ``cache``."""
    from rfdiff import sweep
    from rfdiff.results import CorruptResult
    got = {}
    for lab, u in plan.items():
        try:
            got[lab] = cache.load(sweep.unit_key(cache.kind, u))
        except CorruptResult:
            pass
    return got


def _cost_lines(lp, full_plan, ran, calib) -> tuple[list[str], str]:
    """Measured seconds per unit by (d, model), and what the rungs that did not run would take."""
    import collections
    by = collections.defaultdict(list)
    for lab, r in ran.items():
        by[(lab.psi_p, lab.d, lab.model)].append(sum(r.timings.values()))
    lines = ["| ψ_p | d | model | units | measured s/unit (mean, min–max) | predicted s/unit |", "|---|---|---|---|---|---|"]
    for key in sorted(by):
        v = by[key]
        pred = [lp.unit_seconds(full_plan[lab], calib) for lab in ran if (lab.psi_p, lab.d, lab.model) == key]
        lines.append(f"| {key[0]:g} | {key[1]} | {key[2]} | {len(v)} | {sum(v) / len(v):.1f} ({min(v):.1f}–{max(v):.1f}) "
                     f"| {sum(pred) / len(pred):.1f} |")
    sizing = []
    for gb in (16, 8):          # worker memory, 80 % of it to the unit (docs/finite_size.md, "On a cluster")
        try:
            peak, routes = lp.peak_memory(full_plan, int(0.8 * gb * 2**30))
            sizing.append(f"{gb} GB workers: largest unit {peak / 2**30:.1f} GiB, exact-model routes "
                          f"{', '.join(sorted(set(routes.values())))}")
        except ValueError as err:
            sizing.append(f"{gb} GB workers: {err}")
    lines += ["", "Worker sizing for the whole plan (`rfdiff.pipelines.large_p.peak_memory`, 80 % of a worker's memory "
              "to the unit): " + "; ".join(sizing) + "."]
    rest = {lab: u for lab, u in full_plan.items() if lab not in ran}
    if not rest:
        return lines, ""
    rungs = sorted({(lab.psi_p, lab.d) for lab in rest})

    def cost(cal):
        return (f"{_hours(lp.estimate(rest, cal, 1))} on one worker, {_hours(lp.estimate(rest, cal, 2))} on 2, "
                f"{_hours(lp.estimate(rest, cal, 16))} on 16, {_hours(lp.estimate(rest, cal, 64))} on 64 "
                f"(the longest unit: {_hours(max(lp.unit_seconds(u, cal) for u in rest.values()))})")
    text = (f"**Not in this summary:** {len(rest)} of {len(full_plan)} units (not run, or of a seed not complete; rungs "
            + ", ".join(f"ψ_p = {p:g}, d = {d}" for p, d in sorted(rungs))
            + f"). Predicted with the rates measured on the units above ({calib.source}): {cost(calib)}; "
            f"with the reference rates ({lp.CALIBRATION.source}): {cost(lp.CALIBRATION)}.")
    return lines, text


def _complete_seeds(plan, got) -> dict:
    """The results of the seeds whose units of a rung (every ψ_n and model) are all in ``got``."""
    out = {}
    for rung in sorted({(lab.psi_p, lab.d) for lab in plan}):
        labs = [lab for lab in plan if (lab.psi_p, lab.d) == rung]
        for s in sorted({lab.seed for lab in labs}):
            mine = [lab for lab in labs if lab.seed == s]
            if all(lab in got for lab in mine):
                out.update((lab, got[lab]) for lab in mine)
    return out


@contextlib.contextmanager
def _nothing():
    yield None


@common.guarded
def main(argv=None) -> int:
    t_all = time.perf_counter()
    args = parse_args(argv)
    cluster = common.cluster_from(args)
    cache_dir = common.writable_folder(args.out, "--out")
    figdir = common.writable_folder(args.figdir, "--figdir")
    existing = [p for p in _outputs(args) if p.exists()]
    if existing and not args.overwrite and not args.estimate_only:
        raise common.UsageError(f"--name: {existing[0]} exists (pass --overwrite to replace it, or another --name)")
    common.setup(args)
    from rfdiff import results, sweep
    from rfdiff.pipelines import large_p as lp
    from rfdiff.study import run_study
    full = lp.PRESETS[args.preset]
    preset = common.configs(lambda: full.restrict(args.ds))
    full_plan, plan = lp.plan(full), lp.plan(preset)
    cache = sweep.Cache(cache_dir, KIND).for_fn(run_study)
    cached = _cached(cache, full_plan)
    calib = lp.calibrate(list(cached.values())) if cached else lp.CALIBRATION
    todo = {lab: u for lab, u in plan.items() if lab not in cached}
    workers = 1 if cluster.serial or cluster.scheduler else cluster.local_size()
    print(f"plan: {len(plan)} units ({args.preset}" + (f", d ∈ {{{', '.join(map(str, sorted({lab.d for lab in plan})))}}}"
          if args.ds else "") + f"), {len(plan) - len(todo)} cached, {len(todo)} to run; "
          f"estimated {_hours(lp.estimate(todo, calib, workers)) if todo else '0 s'} on {workers} worker(s)"
          + (" (÷ the scheduler's workers)" if cluster.scheduler else "")
          + f"; the whole preset: {_hours(lp.estimate(full_plan, calib, workers))} (rates of {calib.source}; "
          f"{_hours(lp.estimate(full_plan, lp.CALIBRATION, workers))} at the reference rates)",
          file=sys.stderr, flush=True)
    if args.estimate_only:
        return 0
    got = dict(cached)
    failures = []
    if args.report_only:
        todo = {}
    with cluster.client() if todo else _nothing() as client:
        for d in sorted({lab.d for lab in todo}):           # small d first: a partial sweep has whole rungs
            rung = [(lab, u) for lab, u in todo.items() if lab.d == d]
            with common.progress_bar(args, len(rung), f"d = {d}", "unit") as bar:
                rep = sweep.run_sweep(run_study, [u for _, u in rung], cache=cache, client=client,
                                      progress=lambda done, total: bar.update(done - bar.n))
            common.report_warnings(rep)
            for (lab, _), r in zip(rung, rep.results):
                if r is not None:
                    got[lab] = r
            failures += rep.failures
            print(f"d = {d}: {rep.n_computed} computed, {len(rep.failures)} failed in {rep.wall_s:.0f} s",
                  file=sys.stderr, flush=True)
    for fail in failures:
        print(f"unit failed: {fail.unit}\n{fail.traceback}", file=sys.stderr)
    if failures:
        return 1
    if args.report_only:
        ran = _complete_seeds(plan, got)
        if not ran:
            print("nothing to report: no rung has a seed complete in the cache", file=sys.stderr)
            return 1
        summary = lp.summarize(ran)
    else:
        ran = {lab: got[lab] for lab in plan}
        summary = lp.summarize(ran, preset)
    from rfdiff_analysis import report_large_p
    lines, not_run = _cost_lines(lp, full_plan, ran, lp.calibrate(list(ran.values())))
    command = "rfdiff large-p" + (f" --preset {args.preset}" if args.preset != "full" else "") + \
        (f" --ds {','.join(map(str, args.ds))}" if args.ds else "") + (" --report-only" if args.report_only else "")
    predicted = ()
    if not args.no_predictions and lp.missing_rungs(full, got):
        t_pred = time.perf_counter()
        predicted = lp.predict_missing(full, got)
        print(f"predictions for {len(predicted)} rung(s) not in the cache in {time.perf_counter() - t_pred:.1f} s",
              file=sys.stderr, flush=True)
    text = report_large_p.section(summary, command=command, timing_lines=lines, not_run=not_run, predicted=predicted)
    files = []
    if not args.no_plot:
        from rfdiff_analysis import plots_large_p
        files += plots_large_p.draw(summary, figdir, args.name, overwrite=True)
    from rfdiff import io
    report = figdir / f"REPORT_{args.name}.md"
    io.atomic_write(report, lambda fh: fh.write(text.encode()))
    if args.name == "large_p":                       # the copy the main report embeds follows
        from rfdiff_analysis.report import embed_side_reports
        main_report = embed_side_reports(figdir)
        if main_report is not None:
            files.append(main_report)
    meta = common.run_metadata()
    files += results.save(summary, figdir / f"{args.name}_summary",
                          meta={"command": command, "git_commit": meta.get("git_commit")}, overwrite=True)
    print(f"{len(plan)} units ({len(todo)} computed) in {time.perf_counter() - t_all:.1f} s -> "
          f"{', '.join(str(p) for p in [report, *files])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
