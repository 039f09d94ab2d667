#!/usr/bin/env python
"""Main job: train the RF score exactly, extract τ_gen and τ_mem, compare with the theory.

Example: python experiments/rf_timescales.py --p 4096 --n 512
Writes <out>/<name>.json (parameters, timings, timescales, final losses, versions),
<out>/<name>.npz (curves, spectrum) and <out>/<name>.png/.pdf (figure).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--p", type=int, default=4096, help="number of random features p")
    ap.add_argument("--n", type=int, default=512, help="number of training points n")
    ap.add_argument("--d", type=int, default=64, help="data dimension d")
    ap.add_argument("--t", type=float, default=0.1, help="diffusion time t at which the score is learned")
    ap.add_argument("--activation", default="tanh", help="activation σ (tanh, erf, relu_centered, gelu)")
    ap.add_argument("--data", default="isotropic", help="data: isotropic, spectrum (½δ0.5+½δ1.5), power_law, mixture, subspace")
    ap.add_argument("--sigma-x", type=float, default=1.0, help="data scale σ_x (isotropic, power_law, mixture, subspace)")
    ap.add_argument("--seed", type=int, default=0, help="PRNG seed (W, training set, Monte Carlo)")
    ap.add_argument("--tau-min", type=float, default=1e-1, help="smallest training time τ")
    ap.add_argument("--tau-max", type=float, default=1e7, help="largest training time τ")
    ap.add_argument("--n-tau", type=int, default=161, help="number of log-spaced τ points")
    ap.add_argument("--eta", type=float, default=None, help="discrete GD step η (default: gradient flow)")
    ap.add_argument("--gen-frac", type=float, default=0.1, help="τ_gen: score error within this fraction of its minimum")
    ap.add_argument("--mem-frac", type=float, default=0.5, help="τ_mem: gen. gap reaches this fraction of its final value")
    ap.add_argument("--mem-abs", type=float, default=0.05, help="τ_mem (absolute): gen. gap reaches this value")
    ap.add_argument("--tol", type=float, default=1e-8, help="Mehler truncation tolerance for U, Ũ (relative Frobenius)")
    ap.add_argument("--method", choices=("auto", "dense", "lanczos"), default="auto",
                    help="dense eigendecomposition, or matrix-free block Lanczos + SLQ (auto: dense up to p = 8192 "
                         "on CPU, and on an accelerator while ~8 p×p float64 arrays fit in 70%% of its memory)")
    ap.add_argument("--lanczos-steps", type=int, default=24, help="block-Lanczos steps (basis size = steps·d)")
    ap.add_argument("--slq-probes", type=int, default=16, help="SLQ probe vectors for the spectrum (lanczos method)")
    ap.add_argument("--slq-steps", type=int, default=80, help="SLQ Lanczos steps (lanczos method)")
    ap.add_argument("--no-theory", action="store_true", help="skip the theoretical predictions")
    ap.add_argument("--no-plot", action="store_true", help="skip the figure")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ap.add_argument("--out", default="results", help="output folder")
    ap.add_argument("--name", default=None, help="run name (default: built from the parameters)")
    return ap.parse_args(argv)


def build_config(args):
    from rfdiff.model import DataSpec, RFConfig

    if not (args.tau_min > 0 and args.tau_max > args.tau_min and math.isfinite(args.tau_max)):
        raise ValueError(f"need 0 < tau_min < tau_max < inf, got {args.tau_min}, {args.tau_max}")
    if args.n_tau < 2:
        raise ValueError(f"n_tau must be >= 2, got {args.n_tau}")
    return RFConfig(d=args.d, p=args.p, n=args.n, t=args.t, activation=args.activation,
                    data=DataSpec(kind=args.data, sigma_x=args.sigma_x), seed=args.seed, tol=args.tol)


def theory_prediction(cfg, problem, taus):
    """Theory of SPEC §4 for this configuration, or a dict saying why it is unavailable."""
    try:
        from rfdiff.theory import predict
    except ImportError as err:  # theory module not installed
        return {"available": False, "reason": str(err)}
    data = problem.data
    if data.n_components != 1 or np.any(data.means):
        return {"available": False, "reason": "theory covers zero-mean Gaussian data only"}
    lam = data.eigvals[0]
    vals, counts = np.unique(np.round(lam, 12), return_counts=True)
    atoms = [(float(v), float(c) / lam.size) for v, c in zip(vals, counts)]
    kw = dict(activation=cfg.activation, t=cfg.t, psi_p=cfg.psi_p, psi_n=cfg.psi_n, atoms=atoms, sigma_x2=data.sigma_x2)
    out = dict(predict(taus=taus, d=cfg.d, **kw))  # with the finite-d sample-norm correction
    inf = predict(taus=None, test_loss=False, **kw)  # Theorem 3.1 as d → ∞
    out.update(lambda_min_d_inf=inf["lambda_min"], tau_mem_d_inf=inf["tau_mem"],
               train_loss_inf_d_inf=inf["train_loss_inf"])
    out["available"] = True
    return out


def make_figure(curves, spectrum, spectrum_w, ts, theory, cfg):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tau = curves["tau"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    ax.semilogx(tau, curves["train_loss"], label="train (exact)", color="C0")
    ax.semilogx(tau, curves["test_loss"], label="test (exact)", color="C1")
    if theory.get("available") and theory.get("train_loss") is not None:
        ax.semilogx(tau, theory["train_loss"], "k--", lw=1, label="train (theory)")
    if theory.get("available") and theory.get("test_loss") is not None:
        ax.semilogx(tau, theory["test_loss"], "r:", lw=1.2, label="test (theory)")
    ax.set_xlabel(r"training time $\tau$")
    ax.set_ylabel("denoising loss")
    top = float(np.max(curves["test_loss"]))
    if theory.get("available") and theory.get("test_loss") is not None:
        top = max(top, float(np.max(theory["test_loss"])))
    ax.set_ylim(0, max(1.2, min(3.0, top * 1.05)))
    ax = axes[1]
    ax.loglog(tau, curves["score_error"], label=r"$E_{score}$ (to true score)", color="C2")
    ax.loglog(tau, curves["emp_distance"], label="distance to empirical score", color="C3")
    if theory.get("available") and theory.get("score_error") is not None:
        ax.loglog(tau, theory["score_error"], "k:", lw=1.2, label=r"$E_{score}$ (theory)")
    ax.set_xlabel(r"training time $\tau$")
    for a in axes[:2]:
        for key, style, lab in (("tau_gen", "-", r"$\tau_{gen}$"), ("tau_mem", "-", r"$\tau_{mem}$")):
            v = ts[key][key]
            if np.isfinite(v):
                a.axvline(v, color="gray" if key == "tau_gen" else "purple", ls=style, lw=1,
                          label=f"{lab} sim = {v:.3g}")
            if theory.get("available") and theory.get(key) is not None and np.isfinite(theory[key]):
                a.axvline(theory[key], color="gray" if key == "tau_gen" else "purple", ls=":", lw=1.5,
                          label=f"{lab} theory = {theory[key]:.3g}")
        a.legend(fontsize=7)
    ax = axes[2]
    keep = spectrum > 0
    lam = spectrum[keep]
    bins = np.logspace(np.log10(lam.min()) - 0.05, np.log10(lam.max()) + 0.05, 120)
    if spectrum_w is None:
        ax.hist(lam, bins=bins, color="C0", alpha=0.7, label="eigenvalues of U (exact)")
    else:
        ax.hist(lam, bins=bins, weights=spectrum_w[keep] * cfg.p, color="C0", alpha=0.7,
                label="eigenvalues of U (SLQ estimate)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    if theory.get("available"):
        for e in theory.get("edges") or []:
            ax.axvspan(e[0], e[1], color="orange", alpha=0.15)
        lm = theory.get("lambda_min")
        if lm:
            ax.axvline(lm, color="purple", ls=":", label=r"theory $\lambda_{min}$ of $\rho_1$")
    ax.set_xlabel(r"$\lambda$")
    ax.set_ylabel("count")
    ax.legend(fontsize=7)
    fig.suptitle(f"RF score: d={cfg.d}, p={cfg.p}, n={cfg.n}, t={cfg.t:g}, {cfg.activation}, {cfg.data.kind} "
                 f"($\\psi_p$={cfg.psi_p:g}, $\\psi_n$={cfg.psi_n:g})")
    fig.tight_layout()
    return fig


def memorisation_edge(spectrum, weights, cfg):
    """Left edge of the memorisation bulk: the eigenvalue at spectral quantile 1 - n/p (n + d < p), else None.

    Below it sit p - n - d eigenvalues at s_t² and the finite group of ≈ d (SPEC §4).
    """
    if cfg.n + cfg.d >= cfg.p:
        return None
    w = np.full(spectrum.size, 1.0 / spectrum.size) if weights is None else np.asarray(weights)
    order = np.argsort(spectrum)
    cdf = np.cumsum(w[order])
    return float(spectrum[order][min(np.searchsorted(cdf, 1.0 - cfg.n / cfg.p + 0.5 / cfg.p), spectrum.size - 1)])


def spectral_tau(lam, cfg):
    """ψ_p/(Δ_t λ) (SPEC §4)."""
    from rfdiff.diffusion import delta

    return None if not lam else cfg.psi_p / (delta(cfg.t) * lam)


def fmt(x):
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.4g}"


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        cfg = build_config(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    import jax

    from rfdiff import dynamics, io, lanczos, model, timescales

    name = args.name or (f"rf_p{cfg.p}_n{cfg.n}_d{cfg.d}_t{cfg.t:g}_{cfg.activation}_{cfg.data.kind}"
                         f"_s{cfg.seed}")
    out = Path(args.out)
    timings = {}
    stages = ["matrices U, V, Ũ, Ṽ", "eigendecomposition", "curves", "theory", "figure + save"]
    bar = tqdm(total=len(stages), disable=args.no_progress, desc="rf_timescales", unit="stage", file=sys.stderr)
    t_all = time.perf_counter()

    def stage(i, fn):
        bar.set_postfix_str(stages[i])
        t0 = time.perf_counter()
        res = fn()
        timings[stages[i]] = time.perf_counter() - t0
        bar.update(1)
        return res

    method = args.method if args.method != "auto" else ("dense" if dynamics.dense_fits(cfg.p) else "lanczos")
    stages[1] = "eigendecomposition" if method == "dense" else "block Lanczos + SLQ"
    problem = stage(0, lambda: model.build_problem(cfg, dense_population=(method == "dense")))

    def solve():
        if method == "dense":
            d = dynamics.from_problem(problem)
            return d, np.asarray(d.lam), None
        d = lanczos.from_problem(problem, steps=args.lanczos_steps)
        nodes, w = lanczos.slq_spectrum(problem.train.U, cfg.p, jax.random.PRNGKey(cfg.seed + 1),
                                        args.slq_probes, args.slq_steps)
        return d, nodes, w

    dyn, spectrum, spectrum_w = stage(1, solve)
    taus = np.logspace(np.log10(args.tau_min), np.log10(args.tau_max), args.n_tau)
    curves = stage(2, lambda: dyn.curves(taus, eta=args.eta))
    theory = stage(3, lambda: {"available": False, "reason": "--no-theory"} if args.no_theory
                   else theory_prediction(cfg, problem, taus))
    ts = {"tau_gen": timescales.tau_gen(taus, curves["score_error"], args.gen_frac),
          "tau_mem": timescales.tau_mem(taus, curves["gen_gap"], args.mem_frac, args.mem_abs)}

    def save():
        theory_json = {k: v for k, v in theory.items() if not isinstance(v, np.ndarray)}
        edge = memorisation_edge(spectrum, spectrum_w, cfg)
        result = {
            "name": name, "config": cfg.to_dict(), "psi_p": cfg.psi_p, "psi_n": cfg.psi_n,
            "tau_grid": {"min": args.tau_min, "max": args.tau_max, "n": args.n_tau, "eta": args.eta},
            "timescales": ts, "theory": theory_json,
            "final": {k: float(v[-1]) for k, v in curves.items() if k != "tau"},
            "min_score_error": float(np.min(curves["score_error"])),
            "matrices": {"train_order": problem.train.order, "train_trunc_error": problem.train.trunc_error,
                         "pop_order": problem.pop.order, "pop_trunc_error": problem.pop.trunc_error,
                         "fisher": problem.fisher, "n_negative_eigenvalues": dyn.n_negative},
            "spectrum": {"lambda_min": float(spectrum.min()), "lambda_max": float(spectrum.max()),
                         "memorisation_bulk_left_edge": edge, "tau_mem_spectral": spectral_tau(edge, cfg),
                         "method": method if method == "dense" else
                         f"SLQ ({args.slq_probes} probes x {args.slq_steps} steps; Ritz values)"},
            "method": method, "lanczos_steps": args.lanczos_steps if method == "lanczos" else None,
            "metadata": io.run_metadata(),
        }
        arrays = {k: np.asarray(v) for k, v in curves.items()}
        arrays["eigenvalues"] = spectrum
        if spectrum_w is not None:
            arrays["eigenvalue_weights"] = spectrum_w
        for k, v in theory.items():
            if isinstance(v, np.ndarray):
                arrays[f"theory_{k}"] = v
        files = []
        if not args.no_plot:
            import matplotlib.pyplot as plt
            fig = make_figure(curves, spectrum, spectrum_w, ts, theory, cfg)
            files += io.save_figure(fig, out / name)
            plt.close(fig)
        timings["total"] = time.perf_counter() - t_all
        result["timings_s"] = timings
        result["memory"] = {"peak_rss_bytes": io.peak_rss_bytes(), "device": io.device_memory()}
        files.append(io.save_npz(out / f"{name}.npz", arrays))
        files.append(io.save_json(out / f"{name}.json", result))
        return result, files

    result, files = stage(4, save)
    bar.close()

    th = theory if theory.get("available") else {}
    print(f"\nRF score  d={cfg.d} p={cfg.p} n={cfg.n} t={cfg.t:g} {cfg.activation} {cfg.data.kind} "
          f"seed={cfg.seed}  (ψ_p={cfg.psi_p:g}, ψ_n={cfg.psi_n:g})")
    print(f"{'quantity':<34}{'simulation':>14}{'theory':>14}")
    mem_edge = result["spectrum"]["memorisation_bulk_left_edge"]
    rows = [("τ_gen (score err ≤ (1+%g)·min)" % args.gen_frac, ts["tau_gen"]["tau_gen"], None),
            ("τ_gen = ψ_p/(Δ_t λ(ρ_2))", None, th.get("tau_gen")),
            ("τ_mem (gap ≥ %g·final)" % args.mem_frac, ts["tau_mem"]["tau_mem"], None),
            ("τ_mem (gap ≥ %g)" % args.mem_abs, ts["tau_mem"]["tau_mem_abs"], None),
            ("τ_mem = ψ_p/(Δ_t λ_min), exact edge", spectral_tau(mem_edge, cfg), th.get("tau_mem")),
            ("  … Theorem 3.1 (d → ∞) edge", None, th.get("tau_mem_d_inf")),
            ("  … Theorem 3.2 edge", None, th.get("tau_mem_asymptotic")),
            ("λ_min of memorisation bulk", mem_edge, th.get("lambda_min")),
            ("  … Theorem 3.1 (d → ∞)", None, th.get("lambda_min_d_inf")),
            ("final train loss", result["final"]["train_loss"], th.get("train_loss_inf")),
            ("  … Theorem 3.1 (d → ∞)", None, th.get("train_loss_inf_d_inf")),
            ("final test loss", result["final"]["test_loss"], th.get("test_loss_inf")),
            ("min score error", result["min_score_error"], th.get("score_error_min"))]
    for label, sim, theo in rows:
        print(f"{label:<34}{fmt(sim):>14}{fmt(theo):>14}")
    if not theory.get("available"):
        print(f"(theory unavailable: {theory.get('reason')})")
    print("(λ_min: the spectral quantile 1 - n/p + 1/(2p) of U, where the memorisation bulk starts; theory column with\n"
          " the finite-d sample-norm correction, rows '…' without it; test loss and score error: "
          + str((th.get("curves_method") or {}).get("test_loss", "n/a")) + ")")
    print("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    mem = result["memory"]
    print(f"device: {jax.default_backend()} ({jax.devices()[0].device_kind}); peak RSS "
          f"{mem['peak_rss_bytes'] / 1e9:.2f} GB" + ("" if not mem["device"] else
          f"; device peak {mem['device'].get('peak_bytes_in_use', 0) / 1e9:.2f} GB"))
    print("wrote: " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
