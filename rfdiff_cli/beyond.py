#!/usr/bin/env python
"""Beyond the paper: finite noise draws m, ridge, class-resolved timescales, subspace data.

Four studies, each from exact closed forms (no iterative training):
  1. finite m: losses vs τ for m ∈ {1, 2, 4, 16, ∞}; τ → ∞ test loss vs ψ_p (interpolation peak
     at p = n·m, rise from p ≈ n);
  2. ridge: lower envelope over λ of the τ → ∞ test loss vs ψ_p (and early stopping for comparison);
  3. two-class mixtures: per-class τ_gen, τ_mem vs class variance and vs class weight;
  4. subspace data: τ_mem, τ_gen and the minimal score error vs D/d.
The computation is rfdiff.pipelines.beyond (one unit per part, size or value, and seed); the units
run on a local Dask cluster (or --scheduler, --serial) and are cached under <out>/cache_beyond/.

Example: rfdiff beyond --quick
Writes <out>/beyond[_quick]_s<seed>_<config hash>.json + .npz (rfdiff.results.save: sizes, every unit's curves and
timescales, statics summaries, timings; versions in "meta") and
<figdir>/beyond_{finite_m,interpolation,ridge,classes,subspace}[_quick].png/.pdf.
"""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

from rfdiff_cli import common


def parse_args(argv=None):
    ap = common.Parser(prog="rfdiff beyond", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes (about 15 s on 2 idle cores)")
    ap.add_argument("--seed", type=int, default=0, help="PRNG seed (W, training sets, noise draws, Monte Carlo)")
    ap.add_argument("--t", type=float, default=0.1, help="diffusion time t")
    ap.add_argument("--mu-norm", type=float, default=2.0, help="class centroids ±mu_norm·e_1 (study 3)")
    ap.add_argument("--parts", default="1,2,3,4", help="comma-separated studies to run (2 needs 1)")
    ap.add_argument("--out", default="results", help="folder for JSON + NPZ")
    ap.add_argument("--figdir", default="figures", help="folder for PNG + PDF figures")
    common.add_name_flags(ap)
    ap.add_argument("--no-plot", action="store_true", help="skip the figures")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    common.add_sweep_flags(ap)
    args = ap.parse_args(argv)
    try:
        parts = {int(x) for x in args.parts.split(",") if x.strip()}
    except ValueError:
        parts = set()
    if not parts or not parts <= {1, 2, 3, 4}:
        ap.error(f"--parts must be a subset of 1,2,3,4, got {args.parts!r}")
    args.parts = parts | ({1} if 2 in parts else set())
    return args


def serial_threads(args) -> None:
    """--serial runs every unit in this process: one BLAS thread, as a sweep worker gets, unless the caller set it.

    Effective when numpy is not loaded yet (the script's own process); on the shared 2-core machine,
    OpenBLAS with 2 spinning threads made a 512×512 eigh take 7 s instead of 0.09 s.
    """
    if args.serial and "numpy" not in sys.modules:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")


def print_summary(res) -> None:
    f = common.fmt
    print(f"\nbeyond (seed {res.seed}, t = {res.t:g}, sizes d={res.sizes.d}/{res.sizes.cls_d}/{res.sizes.sub_d})")
    if res.finite_m:
        u = res.finite_m[0].unit
        print(f"[1] finite m  d={u.d} p={u.p} n={u.n}")
        print(f"    {'m':>4}{'τ_gen':>10}{'τ_mem':>10}{'min E_score':>13}{'test(τ=∞)':>12}{'train on draws (τ=∞)':>22}")
        for r in res.finite_m:
            ts, lim = r.timescales, r.limit
            frozen = lim.get("train_loss_frozen", lim.train_loss)
            print(f"    {'∞' if r.label == 'inf' else r.label:>4}{f(ts.tau_gen, 3):>10}{f(ts.tau_mem, 3):>10}"
                  f"{f(ts.min_score_error):>13}{f(float(lim.test_loss[0])):>12}{f(float(frozen[0])):>22}")
        for label, s in res.statics.items():
            print(f"    statics m={'∞' if label == 'inf' else label}: peak of τ=∞ test loss at p={s.p_peak} (N={s.N}), "
                  f"value {s.test_at_peak:.4g}; minimum {s.min_test:.4g} at p={s.p_min_test}; "
                  f"ridge envelope max {s.envelope_max:.4g}")
    if res.ridge is not None:
        r = res.ridge
        print(f"[2] ridge: optimal λ* = {r.lambda_opt:.3g} at p = {r.unit.p}; early stopping (λ = 0) test loss ≤ "
              f"{max(r.early_stopping_test):.4g} over p")
    for c in res.classes:
        r = c.row()
        print(f"[3] {c.unit.kind} of class 1 = {r['value']:<5g} τ_gen = {r['tau_gen'][0]:.3g} / {r['tau_gen'][1]:.3g}"
              f"  τ_mem = {r['tau_mem'][0]:.3g} / {r['tau_mem'][1]:.3g}  (class 0 / class 1)")
    for s in res.subspace:
        r = s.row()
        tm = "—" if r["tau_mem"] is None else f"{r['tau_mem']:.3g}"
        print(f"[4] D/d = {r['D_over_d']:<6.3g} τ_gen = {r['tau_gen']:.3g}  τ_mem = {tm}  "
              f"min E_score = {r['min_score_error']:.4g} ({r['relative_min_score_error']:.3g} of J/d)"
              f"  final gap = {r['final_gap']:.3g}")


@common.guarded
def main(argv=None) -> int:
    t_all = time.perf_counter()
    args = parse_args(argv)
    serial_threads(args)
    from rfdiff.pipelines import beyond

    sizes = beyond.PRESETS["quick" if args.quick else "full"]
    common.configs(lambda: beyond.units(sizes, seed=args.seed, t=args.t, mu_norm=args.mu_norm, parts=args.parts))
    cluster = common.cluster_from(args)
    suffix = "_quick" if args.quick else ""
    stem = common.result_stem(args, f"beyond{suffix}_s{args.seed}", {
        "quick": args.quick, "seed": args.seed, "t": args.t, "mu_norm": args.mu_norm, "parts": sorted(args.parts)})
    if not args.no_plot:
        common.check_figure(args.figdir, [f"beyond_{n}{suffix}" for n in
                                          ("finite_m", "interpolation", "ridge", "classes", "subspace")], args.overwrite)
    common.setup(args)

    with common.progress_bar(args, None, "beyond", "unit") as bar, cluster.client() as client:
        def progress(done, total):
            bar.total = total
            bar.n = done
            bar.refresh()

        res, rep = beyond.run(sizes, seed=args.seed, t=args.t, mu_norm=args.mu_norm, parts=args.parts,
                              cache_dir=stem.parent / "cache_beyond", client=client, progress=progress)
    res.timings["total"] = time.perf_counter() - t_all
    meta = {"command": "rfdiff beyond " + " ".join(argv if argv is not None else sys.argv[1:]),
            "sweep": {"kind": rep.kind, "backend": rep.backend, "computed": rep.n_computed, "loaded": rep.n_loaded,
                      "n_workers": rep.n_workers, "wall_s": rep.wall_s}, **common.run_metadata()}
    print_summary(res)  # the numbers first: a full disk loses none
    files = common.save_result(res, stem, meta, args.overwrite)          # then the result: an interrupted plot loses nothing
    if not args.no_plot:
        from rfdiff_analysis import plots, plots_beyond
        for name in plots_beyond.figure_names(res):
            files += plots.save(plots_beyond.FIGURES[name](res), Path(args.figdir) / f"beyond_{name}{suffix}",
                                overwrite=args.overwrite)
    unit_s = sum(v for k, v in res.timings.items() if k not in ("total", "figures") and math.isfinite(v))
    print(f"total {res.timings['total']:.1f} s ({rep.n_computed} units computed in {unit_s:.1f} s on {rep.backend}, "
          f"{rep.n_loaded} cached); wrote: " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
