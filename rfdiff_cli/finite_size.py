#!/usr/bin/env python
"""Finite-size study: how far is the theory's L_train(τ) from the exact finite-d model, and why.

For each (d, ψ_n) at fixed ψ_p and t, one draw of W and of the training set gives three sets of
train- and test-loss curves on the same τ grid: the exact finite-d model, the Gaussian-equivalent
model on the same W and X, and the d → ∞ theory (plus the train loss with the finite-d norm
correction). Printed per point: the largest relative error over τ ≤ 100 τ_mem of each pair, the
memorisation-edge error, and power-law fits of the errors against n at fixed ψ_p, ψ_n (a
correction ∝ 1/n has slope −1). A second block scans ψ_p at the same d and ψ_n: at fixed n and d
the GE-vs-exact gap grows with p. ``--decompose`` adds L_train(∞) of the exact model and of
surrogates that replace one of its parts (docs/theory.md §7.1). The computation is
rfdiff.pipelines.finite_size; the units run on a local Dask cluster (or --scheduler, --serial).

Example: rfdiff finite-size --quick
Writes <out>/finite_size[_quick]_s<seed>_<config hash>.json + .npz (rfdiff.results.save: grid, rows with their
curves, fits, decomposition) and <figdir>/finite_size[_quick].png/.pdf. Units are cached under
<out>/cache_finite_size/ so an interrupted run resumes.
"""
from __future__ import annotations

import os
import sys
import time

from rfdiff_cli import common


def parse_args(argv=None):
    ap = common.Parser(prog="rfdiff finite-size", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="d ≤ 32 (about two minutes)")
    ap.add_argument("--ds", default=None, help="comma-separated d values (with --psi-ns/--psi-p: one product grid)")
    ap.add_argument("--psi-ns", default=None, help="comma-separated ψ_n values")
    ap.add_argument("--psi-p", default=None, help="comma-separated ψ_p = p/d values (default 64)")
    ap.add_argument("--decompose", action="store_true",
                    help="also split L_train(∞)'s gap into parts of the exact model (d = 24 … 96; ψ_n = 4, ψ_p = 64)")
    ap.add_argument("--t", type=float, default=0.1, help="diffusion time t")
    ap.add_argument("--seed", type=int, default=1, help="PRNG seed of W and the training set")
    ap.add_argument("--out", default="results", help="folder for JSON + NPZ (and the unit cache)")
    ap.add_argument("--figdir", default="figures", help="folder for PNG + PDF")
    common.add_name_flags(ap)
    ap.add_argument("--no-plot", action="store_true", help="skip the figure")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    common.add_sweep_flags(ap)
    args = ap.parse_args(argv)
    args.values = {}
    for flag, cast in (("ds", int), ("psi_ns", float), ("psi_p", float)):
        text = getattr(args, flag)
        try:
            args.values[flag] = None if text is None else tuple(cast(x) for x in text.split(","))
        except ValueError as e:
            ap.error(f"--{flag.replace('_', '-')} needs comma-separated numbers ({e})")
    return args


def serial_threads(args) -> None:
    """--serial runs every unit in this process: one BLAS thread, as a sweep worker gets, unless the caller set it.

    Effective when numpy is not loaded yet (the script's own process); measured on the shared
    2-core machine, two spinning OpenBLAS threads made the quick grid 6× slower.
    """
    if args.serial and "numpy" not in sys.modules:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")


def build(args):
    """The blocks of the grid (a preset, or one product grid from --ds/--psi-ns/--psi-p) and the first unit."""
    from rfdiff.pipelines import finite_size as fs

    blocks = fs.PRESETS["quick" if args.quick else "full"]
    v = args.values
    try:
        if any(x is not None for x in v.values()):
            base = blocks[0]
            blocks = (fs.Block(v["ds"] or base.ds, v["psi_ns"] or base.psi_ns, v["psi_p"] or base.psi_ps),)
        fs.gap_units(blocks, args.t, args.seed)          # validates t, seed and every size
    except ValueError as err:
        if str(err).startswith("psi_ps"):
            raise common.UsageError(f"--psi-p: {err}") from None
        raise common.usage_error(err) from None
    return blocks


def print_tables(res) -> None:
    print("max relative error over τ ≤ 100 τ_mem (train: L_train; test: L_test)")
    print(f"{'d':>4} {'p':>6} {'n':>5} {'ψ_n':>5} {'ψ_p':>4} | {'theory vs exact':>15} {'finite-d vs exact':>17} "
          f"{'theory vs GE':>12} {'GE vs exact':>11} | {'n × err':>7} {'n/ψ_p × GE err':>14} | "
          f"{'mem. edge err (∞, d)':>20} | {'test: theory vs exact':>21} {'vs GE':>7}")
    for g in res.rows:
        r = g.row()
        print(f"{r['d']:4d} {r['p']:6d} {r['n']:5d} {r['psi_n']:5g} {r['psi_p']:4g} | {r['theory_vs_exact']:15.2%} "
              f"{r['theory_d_vs_exact']:17.2%} {r['theory_vs_ge']:12.2%} {r['ge_vs_exact']:11.2%} | "
              f"{r['n'] * r['theory_vs_exact']:7.1f} {r['n'] / r['psi_p'] * r['ge_vs_exact']:14.2f} | "
              f"{r['edge_err']:+9.1%} {r['edge_err_d']:+9.1%}  | "
              f"{r['test_theory_vs_exact']:21.2%} {r['test_theory_vs_ge']:7.2%}")

    def slope(fit) -> str:
        s = fit.slope
        return f"{s.value:.2f}" + (f" [{s.lo:.2f}, {s.hi:.2f}]" if s.lo == s.lo else "")

    for f in res.fits:
        print(f"ψ_p={f.psi_p:g}, ψ_n={f.psi_n:g}: theory-vs-exact error ∝ n^{slope(f.fits['theory_vs_exact'])}; "
              f"GE-vs-exact ∝ n^{slope(f.fits['ge_vs_exact'])}; test loss theory-vs-exact ∝ "
              f"n^{slope(f.fits['test_theory_vs_exact'])} (95 % intervals)")
    if res.psi_p_scan is not None:
        q = res.psi_p_scan
        print(f"GE-vs-exact error ∝ (ψ_p/n)^{slope(q.ge_vs_exact)} over all points; "
              f"error × n/ψ_p: median {q.ratio_median:.2f} (range {q.ratio_min:.2f} … {q.ratio_max:.2f})")
    if res.decomposition:
        print("L_train(τ → ∞) of the exact model and of surrogates that replace one part of it "
              "(rfdiff.pipelines.finite_size.decompose_unit)")
        print(f"{'d':>4} {'p':>6} {'n':>5} | {'exact':>7} {'order 1':>8} {'slopes avg':>10} {'mean iid':>9} "
              f"{'both':>7} | {'theory':>7}")
        for r in res.decomposition:
            print(f"{r.d:4d} {r.p:6d} {r.n:5d} | {r.exact:7.4f} {r.order1:8.4f} {r.slopes_avg:10.4f} "
                  f"{r.mean_iid:9.4f} {r.both:7.4f} | {r.theory:7.4f}")


@common.guarded
def main(argv=None) -> int:
    t_all = time.perf_counter()
    args = parse_args(argv)
    serial_threads(args)
    blocks = build(args)
    cluster = common.cluster_from(args)
    name = f"finite_size{'_quick' if args.quick else ''}"
    stem = common.result_stem(args, f"{name}_s{args.seed}", {k: getattr(args, k) for k in (
        "quick", "values", "decompose", "t", "seed")})
    if not args.no_plot:
        common.check_figure(args.figdir, name, args.overwrite)
    common.setup(args)
    from rfdiff.pipelines import finite_size as fs

    bars = {}

    def progress(stage, done, total):
        if stage not in bars:
            bars[stage] = common.progress_bar(args, total, stage, "point")
        bars[stage].n = done
        bars[stage].refresh()

    try:
        with cluster.client() as client:
            res, reports = fs.run(blocks, t=args.t, seed=args.seed, decompose=args.decompose,
                                  cache_dir=stem.parent / "cache_finite_size", client=client, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    meta = {"command": "rfdiff finite-size " + " ".join(argv if argv is not None else sys.argv[1:]),
            "sweeps": [{"kind": r.kind, "backend": r.backend, "computed": r.n_computed, "loaded": r.n_loaded,
                        "wall_s": r.wall_s} for r in reports], "wall_s": time.perf_counter() - t_all,
            **common.run_metadata()}
    print_tables(res)  # the numbers first: a full disk loses none
    files = common.save_result(res, stem, meta, args.overwrite)          # then the result: an interrupted plot loses nothing
    if not args.no_plot:
        from pathlib import Path

        from rfdiff_analysis import plots, plots_finite_size
        files += plots.save(plots_finite_size.finite_size_figure(res), Path(args.figdir) / name, overwrite=args.overwrite)
    done = ", ".join(f"{r.n_computed} computed, {r.n_loaded} cached" for r in reports)
    print(f"wall {meta['wall_s']:.1f} s ({done}); wrote " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
