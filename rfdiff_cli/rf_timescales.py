#!/usr/bin/env python
"""Main job: train the RF score exactly, read τ_gen and τ_mem off simulation and theory, compare them.

Example: python experiments/rf_timescales.py --p 4096 --n 512      (or: rfdiff run --p 4096 --n 512)
Writes <out>/<name>.json + .npz (the whole StudyResult: configuration, curves, spectra, timescales,
theory, diagnostics, timings, versions) and <out>/<name>.png/.pdf (curves and spectrum).
"""
from __future__ import annotations

import math
import sys
import time

from rfdiff_cli import common

TABLE = [  # label, field of Timescales (or final curve value), printed for simulation | theory | theory d → ∞;
    # the timescales' names are rfdiff.timescales.NAMES (one per definition, as in the report and the docs)
    ("{tau_gen}: E_score ≤ (1+{gen_frac:g})·min", "tau_gen"), ("{tau_mem}: L_gen ≥ {mem_frac:g}·final", "tau_mem"),
    ("{tau_mem_abs}: L_gen ≥ {mem_abs:g}", "tau_mem_abs"), ("λ_mem (quantile 1−n/p+1/2p)", "lambda_mem"),
    ("{tau_mem_spectral} = ψ_p/(Δ_t λ_mem)", "tau_mem_spectral"), ("λ_pop (quantile 1−d/p+1/2p)", "lambda_pop"),
    ("{tau_gen_spectral} = ψ_p/(Δ_t λ_pop)", "tau_gen_spectral"), ("min E_score", "min_score_error"),
    ("final L_gen", "final_gap"), ("final train loss", "train_loss"), ("final test loss", "test_loss")]


def parse_args(argv=None):
    ap = common.Parser(prog="rfdiff run", description=__doc__)
    a = ap.add_argument
    a("--p", type=int, default=4096, help="number of random features p")
    a("--n", type=int, default=512, help="number of training points n")
    a("--d", type=int, default=64, help="data dimension d")
    a("--t", type=float, default=0.1, help="diffusion time t")
    a("--activation", default="tanh", help="activation σ: tanh, erf, relu_centered, gelu")
    a("--data", default="isotropic", help="isotropic, spectrum (½δ0.5+½δ1.5), power_law, mixture, subspace")
    a("--sigma-x", type=float, default=1.0, help="data scale σ_x")
    a("--seed", type=int, default=0, help="PRNG seed of W, the training set and the Monte Carlo")
    a("--tau-min", type=float, default=0.1, help="smallest training time τ")
    a("--tau-max", type=float, default=1e7, help="largest training time τ")
    a("--n-tau", type=int, default=161, help="log-spaced τ points")
    a("--eta", type=float, default=None, help="discrete GD step η (default: gradient flow)")
    common.add_threshold_flags(ap)
    a("--tol", type=float, default=1e-8, help="Mehler truncation tolerance for U, Ũ (relative Frobenius)")
    a("--method", default="auto", help="auto, lanczos, dense or streamed (see docs/theory.md §3.4)")
    a("--lanczos-tol", type=float, default=1e-8, help="block Lanczos stops when U⁻¹V changes less than this")
    a("--lanczos-steps", type=int, default=64, help="at most this many block-Lanczos steps")
    a("--spectrum", default="auto", help="auto, exact (eigenvalues of U), edges (its top d+1 by block Lanczos "
                                          "and the n-th by LDLᵀ of U − σI), slq (no spectral rows: it cannot resolve them) or none (not computed)")
    a("--slq-probes", type=int, default=16, help="SLQ probe vectors (streamed route)")
    a("--slq-steps", type=int, default=80, help="SLQ Lanczos steps (streamed route)")
    a("--no-theory", action="store_true", help="skip the theory")
    a("--no-plot", action="store_true", help="skip the figure")
    a("--scheduler", default=None,
      help="run on a worker of this Dask scheduler (tcp://host:8786) instead of this process: the worker picks the "
           "route by its own memory; the result comes back here to be printed and saved")
    a("--connect-timeout", type=float, default=5.0, help="seconds to reach --scheduler (default 5)")
    common.add_output_flags(ap)
    return ap.parse_args(argv)


def run_remote(scheduler: str, cfg, opts, connect_timeout: float):
    """``rfdiff.study.run`` of (cfg, opts) on a worker of ``scheduler``; its StudyResult comes back over the wire."""
    from rfdiff.study import Study, run_study
    from rfdiff_cli import cluster
    with cluster.ClusterSpec(scheduler=scheduler, connect_timeout=connect_timeout).client() as client:
        return client.submit(run_study, Study(cfg, opts), pure=False).result()


def build(args):
    from rfdiff.model import DataSpec, RFConfig
    from rfdiff.resources import gemm_rate
    from rfdiff.study import StudyOptions, TauGrid, available_memory, route_cost
    cfg = RFConfig(d=args.d, p=args.p, n=args.n, t=args.t, activation=args.activation,
                   data=DataSpec(kind=args.data, sigma_x=args.sigma_x), seed=args.seed, tol=args.tol)
    opts = StudyOptions(taus=TauGrid(args.tau_min, args.tau_max, args.n_tau), method=args.method, eta=args.eta,
                        thresholds=common.thresholds(args), theory=not args.no_theory,
                        spectrum=args.spectrum, lanczos_tol=args.lanczos_tol, lanczos_max_steps=args.lanczos_steps,
                        slq_probes=args.slq_probes, slq_steps=args.slq_steps)
    cost = route_cost(cfg, opts)               # resolves the route; refuses what does not fit, up front
    rate = gemm_rate()
    print(f"route: {cost['method']}, spectrum: {cost['spectrum_method']}, peak memory ≈ {cost['bytes'] / 1e9:.2g} GB "
          f"with the τ grid ({available_memory() / 1e9:.0f} GB available), ≈ {cost['total']:.2g} flops "
          f"(matrices {cost['matrices']:.2g}, dynamics {cost['dynamics']:.2g}, spectrum {cost['spectrum']:.2g}): "
          f"≥ {_seconds(cost['total'] / rate)} at this machine's GEMM rate ({rate / 1e9:.0f} GFLOP/s now)",
          file=sys.stderr)
    return cfg, opts


def _seconds(s: float) -> str:
    return f"{s:.2g} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


def default_name(cfg, opts) -> str:
    return (f"rf_p{cfg.p}_n{cfg.n}_d{cfg.d}_t{cfg.t:g}_{cfg.activation}_{cfg.data.kind}_s{cfg.seed}_"
            f"{common.short_hash((cfg, opts))}")


GRID_END = {  # (field, side of the grid) → what to print instead of the value, and what to do
    ("tau_gen", "<"): "τ_gen < τ_min = {lo}: extend --tau-min",
    ("min_score_error", ">"): "E_score still falls at τ_max = {hi}: min E_score and τ_gen (marked *) are not "
                              "resolved; extend --tau-max",
    ("tau_mem", "<"): "τ_mem < τ_min = {lo}: extend --tau-min",
    ("tau_mem_abs", "<"): "τ_mem (absolute) < τ_min = {lo}: extend --tau-min",
    ("tau_mem_abs", ">"): "τ_mem (absolute) > τ_max = {hi}: extend --tau-max, or lower --mem-abs",
}


def cell(ts, key: str, value, tau) -> str:
    """A value of the table, or the grid end it sits at (``< 0.1``, ``> 1e+07``) when it is only a bound."""
    if ts is None:
        return common.fmt(value)
    side = ts.grid_end(key)
    if side == "<":
        return f"< {common.fmt(tau[0])}"
    if side == ">":
        return f"> {common.fmt(tau[-1])}" if key.startswith("tau") else f"{common.fmt(value)}*"
    if key == "tau_gen" and ts.grid_end("min_score_error") == ">":
        return f"{common.fmt(value)}*"
    return common.fmt(value)


def grid_end_notes(named_sides) -> list[str]:
    """One line per timescale that sits at an end of the τ grid, naming the side and the flag to change."""
    lines = []
    for who, side in named_sides:
        if side is not None:
            lo, hi = common.fmt(side.curves.tau[0]), common.fmt(side.curves.tau[-1])
            lines += [f"note ({who}): {text.format(lo=lo, hi=hi)}" for (key, end), text in GRID_END.items()
                      if side.timescales.grid_end(key) == end]
    return lines


def print_table(res) -> None:
    from rfdiff.timescales import NAMES
    cfg, th = res.config, res.study.options.thresholds
    sides = [res.simulation, res.theory, res.theory_d_inf]
    print(f"\nRF score  d={cfg.d} p={cfg.p} n={cfg.n} t={cfg.t:g} {cfg.activation} {cfg.data.kind} seed={cfg.seed}"
          f"  (ψ_p={cfg.psi_p:g}, ψ_n={cfg.psi_n:g}; route: {res.diagnostics['method']})")
    print(f"{'quantity':<36}{'simulation':>13}{'theory':>13}{'theory d→∞':>13}")
    for label, key in TABLE:
        cells = []
        for s in sides:
            if s is None:
                cells.append(common.fmt(None))
            elif key in ("train_loss", "test_loss"):
                cells.append(common.fmt(s.curves.final().get(key)))
            else:
                cells.append(cell(s.timescales, key, getattr(s.timescales, key), s.curves.tau))
        print(f"{label.format(**vars(th), **NAMES):<36}" + "".join(f"{c:>13}" for c in cells))
    if res.prediction is not None:
        p = res.prediction
        for name, value in ((NAMES["tau_gen_thm32"] + " (support edge of ρ_2)", p.tau_gen_spectral),
                            (NAMES["tau_mem_thm32"] + " (support edge of ρ_1)", p.tau_mem_asymptotic)):
            print(f"{name:<36}{'':>13}{'':>13}{common.fmt(value):>13}")      # d → ∞ quantities: their column
    print("(every row read by the same rule from both sides; theory: finite-d norm correction for the train loss "
          "and spectrum, test loss and score error by the d → ∞ deterministic equivalent)")
    for line in grid_end_notes(zip(("simulation", "theory", "theory d→∞"), sides)):
        print(line)
    if res.diagnostics.get("spectral_rows"):
        print(f"note (simulation): the spectral rows are empty: {res.diagnostics['spectral_rows']}")
    for name, e in res.diagnostics.get("spectrum", {}).get("edges", {}).items():
        print(f"note (simulation): {name} = {e['value']:.6g} (block Lanczos Ritz value; an eigenvalue of U within "
              f"{e['residual_bound']:.1e}, and the eigenvalue of its rank ≥ it)")
    for w in res.warnings:
        print(f"warning: the theory column is not a valid comparison here: {w}")


@common.guarded
def main(argv=None) -> int:
    t_all = time.perf_counter()
    args = parse_args(argv)
    if args.scheduler is not None and not args.scheduler.strip():
        raise common.UsageError("--scheduler must be an address such as tcp://host:8786")
    if not args.connect_timeout > 0:
        raise common.UsageError(f"--connect-timeout must be positive, got {args.connect_timeout}")
    cfg, opts = common.configs(lambda: build(args))
    stem = common.output_stem(args.out, args.name or default_name(cfg, opts), args.overwrite)
    common.setup(args)
    from rfdiff import io, resources, study
    stages = ["matrices", "dynamics", "spectrum", "curves"] + \
        ([] if args.no_theory or cfg.data.kind in study.NO_THEORY else ["theory"])
    if args.scheduler:
        print(f"running on a worker of {args.scheduler} (the route above is this machine's; the worker resolves "
              "its own from its memory)", file=sys.stderr)
        res = run_remote(args.scheduler, cfg, opts, args.connect_timeout)
    else:
        with common.progress_bar(args, len(stages), "rf_timescales", "stage") as bar:
            res = study.run(cfg, opts, progress=lambda s: (bar.set_postfix_str(s), bar.update(0 if s == "matrices" else 1)))
            bar.update(1)
    res.timings["total"] = time.perf_counter() - t_all
    print_table(res)                                   # first: a full disk or a failed plot loses no number
    meta = {"command": "rfdiff run " + " ".join(argv if argv is not None else sys.argv[1:]),
            "memory": {"peak_rss_bytes": resources.peak_rss_bytes(), "device": resources.device_memory()},
            **({"scheduler": args.scheduler} if args.scheduler else {}),
            **common.run_metadata()}
    files = []
    try:
        files += common.save_result(res, stem, meta, args.overwrite)
        if not args.no_plot:
            from rfdiff_analysis import plots
            t0 = time.perf_counter()
            files += plots.save(plots.main_job_figure(res), files[0].with_suffix(""), tight=False,
                                overwrite=args.overwrite)
            res.timings["figure"] = time.perf_counter() - t0
    except FileExistsError:                            # the figure appeared while this run computed
        print(f"error: {stem}.pdf appeared while this run computed; saved: {files[0]}, {files[1]}", file=sys.stderr)
        return 1
    except OSError as err:
        if not io.is_no_space(err):
            raise
        print(f"error: {common.no_space(err, stem.parent, files)}", file=sys.stderr)
        return 1
    print("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in res.timings.items() if math.isfinite(v)))
    print(f"peak RSS {meta['memory']['peak_rss_bytes'] / 1e9:.2f} GB; wrote: " + ", ".join(map(str, files)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
