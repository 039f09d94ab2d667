#!/usr/bin/env python
"""Generation with RF scores: memorisation f_mem and quality vs training time τ for several n (docs/theory.md §5).

For each training-set size n (and seed): train one RF score per grid time with the exact dynamics
to every τ of a log grid (plus τ = ∞), sample with the reverse SDE, measure f_mem (k = 1/3, 1/2,
1/4, bootstrap 95% CIs), the fraction closer to the training set than to a fresh test set, and
the Gaussian KL / W₂ of the samples' moments against the true noised law. Also: collapse under
τ/n, EMM_ε(τ), the early-stopping rule τ_stop = c·n calibrated at the smallest n, a two-class
Gaussian mixture, a non-odd activation, and the generation-level τ_mem next to the loss-level
τ_mem (generalisation gap) and the theory's ψ_p/(Δ_t λ_mem). The computation is
rfdiff.pipelines.generation, run as a cached sweep of units (a local Dask cluster by default).

Example: rfdiff generation --quick
Writes <out>/generation[_quick]_<config hash>.json|.npz (or --name) and <figures>/generation_*.png|.pdf; units are cached under
<out>/cache_generation/, so an interrupted or repeated run only computes what is missing.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from rfdiff_cli import common

def parse_args(argv=None):
    ap = common.Parser(prog="rfdiff generation", description=__doc__)
    a = ap.add_argument
    a("--quick", action="store_true", help="small smoke-test sizes")
    a("--seed", type=int, default=0, help="base PRNG seed (default 0)")
    a("--out", default="results", help="folder for JSON + NPZ (relative paths: from the current folder)")
    a("--figdir", "--figures", dest="figures", default="figures", help="folder for PNG + PDF figures")
    a("--d", type=int, default=None, help="data dimension (default 16; quick 8)")
    a("--p", type=int, default=None, help="random features per grid time (default 1024; quick 256)")
    a("--n", type=str, default=None,
      help="comma-separated training-set sizes (default 2,4,8,16,32,64,128; quick 4,16,64)")
    a("--seeds", type=int, default=None, help="independent repetitions per n (default 2; quick 1)")
    a("--samples", type=int, default=None, help="generated samples per (n, τ) (default 2000; quick 500)")
    a("--steps", type=int, default=None, help="reverse steps (default 100; quick 60)")
    a("--n-times", type=int, default=None, help="grid times per score (default 12; quick 6)")
    a("--t-min", type=float, default=0.01, help="smallest diffusion time (default 0.01)")
    a("--t-max", type=float, default=5.0, help="largest diffusion time (default 5)")
    a("--activation", default="tanh", help="activation σ of the RF scores (tanh, erf, gelu, relu_centered)")
    a("--compare-activation", default="gelu",
      help="non-odd activation run at the smallest n values for comparison ('none' to skip; default gelu)")
    a("--method", default="sde", choices=("sde", "ode"), help="reverse SDE or probability-flow ODE (default sde)")
    a("--mu-norm", type=float, default=3.0, help="‖μ‖ of the two-class mixture ½N(μ,I)+½N(-μ,I) (default 3)")
    a("--f-max", type=float, default=0.1,
      help="best-in-hindsight τ: lowest KL among τ with f_mem ≤ f_max (default 0.1)")
    a("--no-progress", action="store_true", help="hide the progress bar")
    common.add_name_flags(ap)
    a("--replot", action="store_true", help="redraw the figures from saved results (no computation)")
    a("--cache-dir", default=None, help="unit cache, reachable by every worker (default: <out>/cache_generation)")
    a("--recompute", action="store_true", help="ignore cached units (they are overwritten)")
    a("--no-compile-cache", action="store_true",
      help="do not use JAX's persistent compilation cache (default: ~/.cache/rfdiff/jax, or $RFDIFF_CACHE)")
    common.add_sweep_flags(ap)
    return ap.parse_args(argv)


def build(args):
    from rfdiff.pipelines.generation import default_study
    try:
        n_values = None if args.n is None else tuple(int(x) for x in args.n.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"n must be a comma-separated list of integers, got {args.n!r}") from None
    compare = None if args.compare_activation.lower() == "none" else args.compare_activation
    study = default_study(args.quick, d=args.d, p=args.p, n_values=n_values, seeds=args.seeds, samples=args.samples,
                          steps=args.steps, n_times=args.n_times, t_min=args.t_min, t_max=args.t_max,
                          activation=args.activation, compare_activation=compare, method=args.method,
                          mu_norm=args.mu_norm, f_max=args.f_max, seed=args.seed)
    return study if compare else dataclasses.replace(study, compare_activation=None)


def print_summary(s, numbers: dict) -> None:
    st = s.study
    print(f"\nRF-score generation ({st.activation}): d={st.d} p={st.p} grid={st.n_times} samples={st.samples} "
          f"seeds={st.seeds}")
    print("τ:                " + " ".join(f"{lab:>6}" for lab in numbers["tau_labels"]))
    F, Fs = s.fmem[:, :, 0].mean(axis=1), s.fmem_sym[:, :, 0].mean(axis=1)
    for i, n in enumerate(s.n_values):
        print(f"f_mem     n={int(n):<5d} " + " ".join(f"{v:6.3f}" for v in F[i]))
        if s.odd_activation:
            print(f"f_mem(±X) n={int(n):<5d} " + " ".join(f"{v:6.3f}" for v in Fs[i]))
    if s.compare is not None:
        for i, n in enumerate(s.compare.n):
            print(f"{s.compare.activation:<9} n={int(n):<5d} " + " ".join(f"{v:6.3f}" for v in s.compare.fmem[i, 0]))
    if s.mixture is not None:
        for i, n in enumerate(s.mixture.n):
            print(f"mixture   n={int(n):<5d} " + " ".join(f"{v:6.3f}" for v in s.mixture.fmem[i, 0]))
    ref = numbers["references"]
    print(f"references: population-score f_mem {ref['population_fmem_mean']:.4f}, empirical-score f_mem "
          f"{ref['empirical_fmem_mean']:.4f}")
    es = s.early_stopping
    print(f"early stopping c = {es.c:.3g}: τ_stop {[round(float(t), 1) for t in es.tau_stop]}, "
          f"τ* {[float(t) for t in es.tau_best]}")
    print("τ_mem at t = t_min, n:      " + " ".join(f"{int(n):>9d}" for n in s.n_values))
    for label, key in (("samples (f_mem ½ of ∞)", "gen_tau_mem_vs_n"),
                       ("loss (gen. gap ½ final)", "loss_tau_mem_smallest_t_vs_n"),
                       ("theory ψ_p/(Δ_t λ_mem)", "theory_tau_mem_smallest_t_vs_n")):
        print(f"  {label:<25}" + " ".join(f"{common.fmt(v):>9}" for v in numbers[key].values()))


@common.guarded
def main(argv=None) -> int:
    t_all = time.perf_counter()
    args = parse_args(argv)
    study = common.configs(lambda: build(args))
    suffix = "_quick" if args.quick else ""
    from rfdiff import results
    from rfdiff_analysis import key_numbers, plots_generation
    name = args.name or f"generation{suffix}_{common.short_hash(study)}"
    common.check_figure(args.figures, [f"generation_{n}{suffix}" for n in ("fmem_quality", "collapse", "emm",
                        "early_stopping", "tau_mem", "mixture", "activation")], args.overwrite)
    if args.replot:
        stem = Path(args.out) / name
        try:
            summary = results.load(stem)
        except results.CorruptResult as err:
            raise common.UsageError(f"--replot: no readable saved result at {stem}.json/.npz ({err})") from None
        files = plots_generation.figures(summary, args.figures, suffix)
        print("wrote: " + ", ".join(str(f) for f in files))
        return 0
    stem = common.output_stem(args.out, name, args.overwrite)
    cluster = common.cluster_from(args)
    common.setup(args)
    from rfdiff.pipelines import generation as pipeline
    from rfdiff.sweep import SweepError
    cache = Path(args.cache_dir) if args.cache_dir else Path(args.out) / "cache_generation"
    with common.progress_bar(args, None, "generation", "unit") as bar, cluster.client() as client:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)
        try:
            summary, reports = pipeline.run(study, cache_dir=cache, client=client, progress=progress,
                                            recompute=args.recompute)
        except SweepError as err:   # the other units finished and are cached: a rerun computes only the failed ones
            print(f"error: {err}", file=sys.stderr)
            return 1
    numbers = key_numbers.generation(summary)
    sweeps = [{"backend": r.backend, "units": len(r.results), "computed": r.n_computed, "loaded": r.n_loaded,
               "wall_s": r.wall_s, "workers": r.n_workers} for r in reports]
    meta = {"command": "rfdiff generation " + " ".join(argv if argv is not None else sys.argv[1:]),
            "summary": numbers, "sweeps": sweeps, "seconds_total": time.perf_counter() - t_all,
            "cache_dir": str(cache), **common.run_metadata()}
    print_summary(summary, numbers)  # the numbers first: a full disk loses none
    files = common.save_result(summary, stem, meta, args.overwrite)      # then the result: an interrupted plot loses nothing
    files += plots_generation.figures(summary, args.figures, suffix)
    warned = [r for r in summary.runs if r["warnings"]]
    if warned:
        print(f"library warnings in {len(warned)} of {len(summary.runs)} units (runs[].warnings in the JSON), "
              f"e.g. {warned[0]['warnings'][0][:160]}")
    units = sum(r.n_computed for r in reports)
    loaded = sum(r.n_loaded for r in reports)
    print(f"sweeps: {units} units computed, {loaded} loaded from {cache} ({reports[0].backend}); "
          f"total {time.perf_counter() - t_all:.1f}s; wrote: " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
