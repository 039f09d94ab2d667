#!/usr/bin/env python
"""Beyond the paper: finite noise draws m, ridge, class-resolved timescales, subspace data (issue 6).

Four studies, each from exact closed forms (no iterative training):
  1. finite m: losses vs τ for m ∈ {1, 2, 4, 16, ∞}; τ → ∞ test loss vs ψ_p (interpolation peak
     at p = n·m, rise from p ≈ n);
  2. ridge: lower envelope over λ of the τ → ∞ test loss vs ψ_p (and early stopping for comparison);
  3. two-class mixtures: per-class τ_gen, τ_mem vs class variance and vs class weight;
  4. subspace data: τ_mem, τ_gen and the minimal score error vs D/d.

Example: python experiments/beyond.py --quick
Writes <out>/beyond[_quick]_s<seed>.json (numbers, config, versions) and .npz (curves), and
<figdir>/beyond_{finite_m,interpolation,ridge,classes,subspace}[_quick].png/.pdf.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

# One BLAS thread unless the caller says otherwise: on the shared 2-core machine, OpenBLAS with 2
# spinning threads made a 512×512 eigh take 7 s instead of 0.09 s (measured while other jobs ran).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

SIZES = {
    # d, n, p_max (finite m, ridge); classes: d, p, n; subspace: d, p, n
    "full": dict(d=32, n=64, p_max=2048, ms=(1, 2, 4, 16), sweep_ms=(1, 2, 4), n_tau=161, n_ridge=81,
                 cls_d=32, cls_p=1024, cls_n=256, variances=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
                 weights=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                 sub_d=32, sub_p=1024, sub_n=128, Ds=(2, 4, 8, 16, 24, 32), n_mc=8192),
    "quick": dict(d=16, n=24, p_max=512, ms=(1, 2, 4, 16), sweep_ms=(1, 2, 4), n_tau=81, n_ridge=49,
                  cls_d=16, cls_p=128, cls_n=64, variances=(0.25, 1.0, 4.0), weights=(0.125, 0.5, 0.875),
                  sub_d=16, sub_p=256, sub_n=32, Ds=(2, 4, 8, 16), n_mc=2048),
}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (finishes in about a minute)")
    ap.add_argument("--seed", type=int, default=0, help="PRNG seed (W, training sets, noise draws, Monte Carlo)")
    ap.add_argument("--t", type=float, default=0.1, help="diffusion time t")
    ap.add_argument("--mu-norm", type=float, default=2.0, help="class centroids ±mu_norm·e_1 (study 3)")
    ap.add_argument("--parts", default="1,2,3,4", help="comma-separated studies to run (2 needs 1)")
    ap.add_argument("--out", default="results", help="folder for JSON + NPZ")
    ap.add_argument("--figdir", default="figures", help="folder for PNG + PDF figures")
    ap.add_argument("--no-plot", action="store_true", help="skip the figures")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = ap.parse_args(argv)
    parts = {int(x) for x in args.parts.split(",") if x.strip()}
    if not parts <= {1, 2, 3, 4} or not parts:
        ap.error(f"--parts must be a subset of 1,2,3,4, got {args.parts!r}")
    if 2 in parts:
        parts.add(1)
    if args.seed < 0 or not (args.t > 0 and math.isfinite(args.t)) or not args.mu_norm >= 0:
        ap.error("need --seed >= 0, --t > 0 and --mu-norm >= 0")
    args.parts = parts
    return args


def p_grid(n, ms, p_max):
    """ψ_p sweep: log grid plus the points around n·m (the interpolation thresholds)."""
    ps = set(np.unique(np.round(np.logspace(math.log10(4), math.log10(p_max), 22)).astype(int)).tolist())
    for m in ms:
        N = n * m
        ps |= {max(1, int(round(N * f))) for f in (0.75, 0.9, 1.0, 1.1, 1.33)}
    return np.array(sorted(p for p in ps if 1 <= p <= p_max))


# ------------------------------------------------------------------------------------- study 1 + 2

def study_finite_m(args, S, key, tick):
    import jax

    from rfdiff import dynamics, finite_m, model, ridge, timescales

    cfg = model.RFConfig(d=S["d"], p=S["p_max"], n=S["n"], t=args.t, seed=args.seed, tol=1e-8, n_emp=4096)
    problem = model.build_problem(cfg)
    tick("finite m: matrices")
    taus = np.logspace(-1, 7, S["n_tau"])
    dyn = dynamics.from_problem(problem)
    curves = {"inf": dyn.curves(taus)}
    res = {"config": cfg.to_dict(), "psi_p": cfg.psi_p, "psi_n": cfg.psi_n, "per_m": {}}
    fms = {}
    for m in S["ms"]:
        fm = finite_m.finite_m_from_problem(jax.random.fold_in(key, m), problem, m)
        fms[m] = fm
        c = fm.curves(taus)
        curves[str(m)] = c
        last = fm.curves([np.inf])
        res["per_m"][str(m)] = {
            "form": fm.form, "N": m * cfg.n, "noise_sq": fm.noise_sq,
            "tau_gen": timescales.tau_gen(taus, c["score_error"])["tau_gen"],
            "tau_mem": timescales.tau_mem(taus, c["gen_gap_avg"])["tau_mem"],          # test − noise-averaged train
            "tau_mem_frozen": timescales.tau_mem(taus, c["gen_gap"])["tau_mem"],       # test − frozen-draw train
            "tau_min_emp_distance": float(taus[int(np.argmin(c["emp_distance"]))]),
            "min_score_error": float(c["score_error"].min()),
            "inf": {k: float(v[0]) for k, v in last.items() if k != "tau"}}
        tick(f"finite m: m = {m}")
    res["per_m"]["inf"] = {"tau_gen": timescales.tau_gen(taus, curves["inf"]["score_error"])["tau_gen"],
                           "tau_mem": timescales.tau_mem(taus, curves["inf"]["gen_gap"])["tau_mem"],
                           "min_score_error": float(curves["inf"]["score_error"].min())}

    # τ → ∞ statics vs ψ_p, with a ridge grid (study 2 uses the same sweep)
    ps = p_grid(cfg.n, S["sweep_ms"], cfg.p)
    ridges = np.append(0.0, np.logspace(-5, 3, S["n_ridge"]))
    U, V, Up, Vp = problem.train.U, problem.train.V, problem.pop.U, problem.pop.V
    sweeps = {"inf": ridge.statics_vs_p(U, V, cfg.t, ps, ridges, Up, Vp, fisher=problem.fisher)}
    for m in S["sweep_ms"]:
        noise = finite_m.frozen_noise(jax.random.fold_in(key, m), m, cfg.n, cfg.d)  # the draws used above
        sweeps[str(m)] = finite_m.statics_vs_p(problem.W, problem.X, cfg.t, noise, ps, ridges, U_pop=Up, V_pop=Vp,
                                               U_avg=U, V_avg=V, fisher=problem.fisher)
        tick(f"statics vs psi_p: m = {m}")
    # early stopping for comparison (m = ∞): min over τ of the test loss, per p
    early = ridge.early_stopping_vs_p(U, V, cfg.t, ps, taus, Up, Vp)["min_test_loss"]
    sweeps["inf"]["early_stopping_test"] = early
    tick("early stopping vs psi_p")
    summary = {}
    for k, sw in sweeps.items():
        t0 = sw["test_loss"][:, 0]
        env = ridge.lower_envelope(sw)
        i = int(np.argmax(t0))
        j = int(np.argmin(t0))
        summary[k] = {"p_peak": int(ps[i]), "psi_peak": float(ps[i] / cfg.d), "test_at_peak": float(t0[i]),
                      "p_min_test": int(ps[j]), "min_test": float(t0[j]),
                      "N": int(cfg.n * int(k)) if k != "inf" else None,
                      "envelope_max": float(env["value"].max()), "envelope_min": float(env["value"].min()),
                      "optimal_ridge_at_peak": float(env["ridge"][i]),
                      "envelope_at_grid_edge": int(env["at_grid_edge"].sum())}
    t_inf = sweeps["inf"]["test_loss"][:, 0]
    near_n = int(np.argmin(np.abs(ps - cfg.n)))
    summary["inf"]["test_at_p_n"] = float(t_inf[near_n])
    summary["inf"]["test_at_p_min"] = float(t_inf[0])
    summary["inf"]["test_at_p_max"] = float(t_inf[-1])
    summary["inf"]["early_stopping_max"] = float(np.max(early))
    res["statics"] = summary
    res["ps"] = ps
    res["ridges"] = ridges
    # ridge dynamics at p_max (m = ∞): test loss vs τ for λ = 0, the optimal λ, 10× and 0.1× it
    lam_opt = float(ridge.lower_envelope(sweeps["inf"])["ridge"][-1])
    ridge_taus = {}
    for lam in (0.0, 0.1 * lam_opt, lam_opt, 10 * lam_opt):
        ridge_taus[f"{lam:.3g}"] = ridge.with_ridge(dyn, lam).curves(taus)["test_loss"]
    res["ridge_dynamics_lambdas"] = [0.0, 0.1 * lam_opt, lam_opt, 10 * lam_opt]
    tick("ridge dynamics")
    return res, curves, sweeps, ridge_taus, taus


# ------------------------------------------------------------------------------------- study 3

def study_classes(args, S, key, tick):
    import jax

    from rfdiff import classes, data, features

    d, p, n, t = S["cls_d"], S["cls_p"], S["cls_n"], args.t
    W = features.init_W(jax.random.fold_in(key, 31), p, d)
    mu = np.zeros(d)
    mu[0] = args.mu_norm
    taus = np.logspace(-2, 7, S["n_tau"])
    out = {"d": d, "p": p, "n": n, "t": t, "mu_norm": args.mu_norm, "variance": [], "weight": []}
    for kind, grid in (("variance", S["variances"]), ("weight", S["weights"])):
        for j, val in enumerate(grid):
            var1, w1 = (val, 0.5) if kind == "variance" else (1.0, val)
            dat = data.mixture([1 - w1, w1], np.stack([mu, -mu]), [1.0, var1])
            X, lab = classes.stratified_sample(jax.random.fold_in(key, 1000 + j), dat, n)
            _, cd = classes.class_problem(jax.random.fold_in(key, 2000 + j), W, X, lab, dat, t, n_mc=S["n_mc"],
                                          tol=1e-8)
            c = cd.curves(taus)
            ts = classes.class_timescales(c)
            out[kind].append({
                "value": float(val), "variances": [1.0, float(var1)], "weights": [1 - w1, w1],
                "counts": cd.counts.tolist(),
                "tau_gen": [x["tau_gen"]["tau_gen"] for x in ts], "tau_mem": [x["tau_mem"]["tau_mem"] for x in ts],
                "min_score_error": [float(v.min()) for v in c["score_error"]],
                "final_gap": [float(v[-1]) for v in c["gen_gap"]]})
            tick(f"classes: {kind} = {val:g}")
    return out


# ------------------------------------------------------------------------------------- study 4

def study_subspace(args, S, tick):
    from rfdiff import dynamics, model, timescales

    d, p, n = S["sub_d"], S["sub_p"], S["sub_n"]
    taus = np.logspace(-1, 7, S["n_tau"])
    rows, curves = [], {}
    for D in S["Ds"]:
        cfg = model.RFConfig(d=d, p=p, n=n, t=args.t, seed=args.seed, tol=1e-8, n_emp=2048,
                             data=model.DataSpec(kind="subspace", D=int(D)))
        pb = model.build_problem(cfg)
        c = dynamics.from_problem(pb).curves(taus)
        curves[str(D)] = c
        g = timescales.tau_gen(taus, c["score_error"])
        mm = timescales.tau_mem(taus, c["gen_gap"])
        memorises = mm["final_gap"] >= 0.05   # otherwise the relative τ_mem only tracks a negligible gap
        rows.append({"D": int(D), "D_over_d": D / d, "tau_gen": g["tau_gen"],
                     "tau_mem": mm["tau_mem"] if memorises else None, "tau_mem_any_gap": mm["tau_mem"],
                     "tau_mem_abs": mm["tau_mem_abs"], "min_score_error": g["min"],
                     "J_over_d": pb.fisher / d, "relative_min_score_error": g["min"] / (pb.fisher / d),
                     "final_gap": mm["final_gap"]})
        tick(f"subspace: D = {D}")
    return {"d": d, "p": p, "n": n, "t": args.t, "rows": rows}, curves, taus


# ------------------------------------------------------------------------------------- figures

def fig_finite_m(curves, res, taus):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(19, 4.2))
    keys = [k for k in curves if k != "inf"] + ["inf"]
    colors = {k: f"C{i}" for i, k in enumerate(keys)}
    lab = {k: (r"$m=\infty$ (exact average)" if k == "inf" else f"m = {k}") for k in keys}
    for k in keys:
        c = curves[k]
        axes[0].semilogx(taus, c["train_loss"], color=colors[k], label=lab[k])
        if k != "inf":
            axes[0].semilogx(taus, c["train_loss_avg"], color=colors[k], ls=":", lw=1)
        axes[1].semilogx(taus, c["test_loss"], color=colors[k], label=lab[k])
        axes[2].loglog(taus, c["score_error"], color=colors[k], label=lab[k])
        axes[3].loglog(taus, c["emp_distance"], color=colors[k], label=lab[k])
    axes[0].set_title("train loss: on the frozen draws (solid),\nnoise-averaged (dotted)", fontsize=9)
    axes[0].set_ylim(-0.02, 1.25)
    axes[1].set_title("test loss", fontsize=9)
    hi = max(float(np.max(curves[k]["test_loss"])) for k in keys)
    axes[1].set_ylim(0.6, min(hi * 1.05, 3.0))
    axes[2].set_title(r"score error $E_{score}$", fontsize=9)
    axes[3].set_title("distance to the empirical score", fontsize=9)
    for a in axes:
        a.set_xlabel(r"training time $\tau$")
        a.legend(fontsize=7)
    cfg = res["config"]
    fig.suptitle(f"Training on m frozen noise draws per point: d={cfg['d']}, p={cfg['p']}, n={cfg['n']}, "
                 f"t={cfg['t']:g}, tanh", fontsize=10)
    fig.tight_layout()
    return fig


def fig_interpolation(sweeps, res):
    import matplotlib.pyplot as plt

    cfg = res["config"]
    d, n = cfg["d"], cfg["n"]
    ps = res["ps"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    for i, k in enumerate([k for k in sweeps if k != "inf"] + ["inf"]):
        sw = sweeps[k]
        col = f"C{i}"
        lab = r"$m=\infty$" if k == "inf" else f"m = {k}"
        axes[0].loglog(ps / d, sw["test_loss"][:, 0], "o-", ms=3, color=col, label=lab)
        axes[1].semilogx(ps / d, sw["train_loss"][:, 0], "o-", ms=3, color=col, label=lab)
        if k != "inf":
            for a in axes:
                a.axvline(n * int(k) / d, color=col, ls=":", lw=1)
    for a in axes:
        a.axvline(n / d, color="k", ls="--", lw=0.8, label=r"$p = n$")
        a.set_xlabel(r"$\psi_p = p/d$")
        a.legend(fontsize=7)
    axes[0].set_ylabel(r"test loss at $\tau\to\infty$ (min-norm)")
    axes[0].set_title("interpolation peak at p = nm (dotted), rise from p ≈ n", fontsize=9)
    axes[1].set_ylabel(r"train loss at $\tau\to\infty$ (frozen draws)")
    fig.suptitle(f"τ → ∞ statics vs ψ_p: d={d}, n={n}, t={cfg['t']:g}", fontsize=10)
    fig.tight_layout()
    return fig


def fig_ridge(sweeps, res, ridge_taus, taus):
    import matplotlib.pyplot as plt

    from rfdiff import ridge

    cfg = res["config"]
    d, n = cfg["d"], cfg["n"]
    ps = res["ps"]
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    lows = []
    for i, k in enumerate(["inf"] + [k for k in sweeps if k != "inf"]):
        sw = sweeps[k]
        env = ridge.lower_envelope(sw)
        lows.append(env["value"].min())
        col = f"C{i}"
        lab = r"$m=\infty$" if k == "inf" else f"m = {k}"
        axes[0].semilogx(ps / d, sw["test_loss"][:, 0], ":", color=col, lw=1)
        axes[0].semilogx(ps / d, env["value"], "o-", ms=3, color=col, label=f"{lab}: min over λ")
        axes[1].loglog(ps / d, np.maximum(env["ridge"], 1e-7), "o-", ms=3, color=col, label=lab)
    axes[0].semilogx(ps / d, sweeps["inf"]["early_stopping_test"], "k--", lw=1.2,
                     label=r"$m=\infty$, λ = 0: min over τ (early stopping)")
    axes[0].plot([], [], "k:", lw=1, label="λ = 0 (τ → ∞), same colours")
    axes[0].set_ylim(min(lows + [float(np.min(sweeps["inf"]["early_stopping_test"]))]) - 0.02, 1.6)
    axes[0].set_ylabel(r"test loss at $\tau\to\infty$")
    axes[0].set_title("lower envelope over λ of the τ → ∞ test loss", fontsize=9)
    axes[1].set_ylabel(r"optimal ridge $\lambda^*$")
    axes[1].set_title(f"optimal λ (log grid {res['ridges'][1]:.0e} … {res['ridges'][-1]:.0e})", fontsize=9)
    for a in axes[:2]:
        a.axvline(n / d, color="k", ls="--", lw=0.8)
        a.set_xlabel(r"$\psi_p = p/d$")
        a.legend(fontsize=7)
    for j, (lam, y) in enumerate(ridge_taus.items()):
        axes[2].semilogx(taus, y, color=f"C{j}", label=f"λ = {lam}")
    axes[2].set_xlabel(r"training time $\tau$")
    axes[2].set_ylabel("test loss")
    axes[2].set_title(f"ridge dynamics, m = ∞, p = {cfg['p']} (λ* = optimal at this p)", fontsize=9)
    axes[2].legend(fontsize=7)
    fig.suptitle(f"Ridge penalty (Δ_t λ/(dp))‖A‖² (U → U + λI): d={d}, n={n}, t={cfg['t']:g}; "
                 f"dashed vertical: p = n", fontsize=10)
    fig.tight_layout()
    return fig


def fig_classes(cls):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    for a, kind, xl in ((axes[0], "variance", "variance of class 1 (class 0: variance 1)"),
                        (axes[1], "weight", "weight of class 1 (both variances 1)")):
        rows = cls[kind]
        x = [r["value"] for r in rows]
        for c, col in ((0, "C0"), (1, "C3")):
            a.loglog(x, [r["tau_gen"][c] for r in rows], "o-", color=col, label=fr"$\tau_{{gen}}$ class {c}")
            a.loglog(x, [r["tau_mem"][c] for r in rows], "s--", color=col, label=fr"$\tau_{{mem}}$ class {c}")
        a.set_xlabel(xl)
        a.set_ylabel(r"$\tau$")
        a.set_xticks(x)
        a.set_xticklabels([f"{v:g}" for v in x])
        a.minorticks_off()
        a.legend(fontsize=7)
    axes[0].set_title("per-class timescales vs class variance", fontsize=9)
    axes[1].set_title("per-class timescales vs class weight", fontsize=9)
    fig.suptitle(f"Two-class mixture ±{cls['mu_norm']:g}e₁: d={cls['d']}, p={cls['p']}, n={cls['n']}, "
                 f"t={cls['t']:g}", fontsize=10)
    fig.tight_layout()
    return fig


def fig_subspace(sub, curves, taus):
    import matplotlib.pyplot as plt

    rows = sub["rows"]
    x = [r["D_over_d"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.3))
    for i, (D, c) in enumerate(curves.items()):
        axes[0].loglog(taus, c["score_error"] / rows[i]["J_over_d"], color=f"C{i}",
                       label=f"D/d = {int(D) / sub['d']:.3g}")
    axes[0].set_xlabel(r"training time $\tau$")
    axes[0].set_ylabel(r"$E_{score}$ / (J/d)")
    axes[0].legend(fontsize=7)
    axes[1].semilogy(x, [np.nan if r["tau_mem"] is None else r["tau_mem"] for r in rows], "s-", color="C3",
                     label=r"$\tau_{mem}$ (final gap ≥ 0.05)")
    axes[1].semilogy(x, [r["tau_gen"] for r in rows], "o-", color="C0", label=r"$\tau_{gen}$")
    axes[1].set_xlabel("D/d")
    axes[1].legend(fontsize=7)
    axes[2].semilogy(x, [r["min_score_error"] for r in rows], "o-", label=r"min$_\tau E_{score}$")
    axes[2].semilogy(x, [r["relative_min_score_error"] for r in rows], "s--", label=r"min$_\tau E_{score}$ / (J/d)")
    axes[2].set_xlabel("D/d")
    axes[2].legend(fontsize=7)
    fig.suptitle(f"Subspace data (intrinsic dimension D): d={sub['d']}, p={sub['p']}, n={sub['n']}, t={sub['t']:g}",
                 fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    args = parse_args(argv)
    import jax
    from tqdm import tqdm

    from rfdiff import io

    jax.config.update("jax_enable_x64", True)  # float64 throughout this script (STYLE: τ_mem needs it)
    S = SIZES["quick" if args.quick else "full"]
    key = jax.random.PRNGKey(args.seed)
    suffix = "_quick" if args.quick else ""
    name = f"beyond{suffix}_s{args.seed}"
    n_steps = ((1 + len(S["ms"]) + len(S["sweep_ms"]) + 2) if 1 in args.parts else 0) \
        + ((len(S["variances"]) + len(S["weights"])) if 3 in args.parts else 0) \
        + (len(S["Ds"]) if 4 in args.parts else 0) + 1
    bar = tqdm(total=n_steps, disable=args.no_progress, desc="beyond", unit="step", file=sys.stderr)
    timings, t_last, t_all = {}, [time.perf_counter()], time.perf_counter()

    def tick(label):
        now = time.perf_counter()
        timings[label] = now - t_last[0]
        t_last[0] = now
        bar.set_postfix_str(label)
        bar.update(1)

    result = {"name": name, "quick": args.quick, "seed": args.seed, "t": args.t, "sizes": S,
              "parts": sorted(args.parts)}
    arrays, figs = {}, {}
    if 1 in args.parts:
        res, curves, sweeps, ridge_taus, taus = study_finite_m(args, S, jax.random.fold_in(key, 1), tick)
        result["finite_m"] = {k: v for k, v in res.items() if k not in ("ps", "ridges")}
        result["finite_m"]["ps"] = res["ps"].tolist()
        result["finite_m"]["ridges"] = res["ridges"].tolist()
        arrays["tau"] = taus
        for m, c in curves.items():
            for k, v in c.items():
                if k != "tau":
                    arrays[f"m{m}_{k}"] = v
        for m, sw in sweeps.items():
            for k, v in sw.items():
                arrays[f"statics_m{m}_{k}"] = v
        for lam, v in ridge_taus.items():
            arrays[f"ridge_dynamics_test_lambda{lam}"] = v
        if not args.no_plot:
            figs["finite_m"] = lambda: fig_finite_m(curves, res, taus)
            figs["interpolation"] = lambda: fig_interpolation(sweeps, res)
            if 2 in args.parts:
                figs["ridge"] = lambda: fig_ridge(sweeps, res, ridge_taus, taus)
    if 3 in args.parts:
        cls = study_classes(args, S, jax.random.fold_in(key, 3), tick)
        result["classes"] = cls
        if not args.no_plot:
            figs["classes"] = lambda: fig_classes(cls)
    if 4 in args.parts:
        sub, sub_curves, sub_taus = study_subspace(args, S, tick)
        result["subspace"] = sub
        arrays["subspace_tau"] = sub_taus
        for D, c in sub_curves.items():
            for k, v in c.items():
                if k != "tau":
                    arrays[f"subspace_D{D}_{k}"] = v
        if not args.no_plot:
            figs["subspace"] = lambda: fig_subspace(sub, sub_curves, sub_taus)

    files = []
    if figs:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        for fname, make in figs.items():
            fig = make()
            files += io.save_figure(fig, Path(args.figdir) / f"beyond_{fname}{suffix}")
            plt.close(fig)
    tick("figures + save")
    timings["total"] = time.perf_counter() - t_all
    result["timings_s"] = timings
    result["metadata"] = io.run_metadata()
    out = Path(args.out)
    files.append(io.save_npz(out / f"{name}.npz", arrays))
    files.append(io.save_json(out / f"{name}.json", result))
    bar.close()

    print(f"\nbeyond (seed {args.seed}, t = {args.t:g}, {'quick' if args.quick else 'full'} sizes)")
    if 1 in args.parts:
        fmr = result["finite_m"]
        print(f"[1] finite m  d={fmr['config']['d']} p={fmr['config']['p']} n={fmr['config']['n']}")
        print(f"    {'m':>4}{'τ_gen':>10}{'τ_mem':>10}{'min E_score':>13}{'test(τ=∞)':>12}{'train(τ=∞)':>12}")
        for m, r in fmr["per_m"].items():
            inf = r.get("inf", {})
            print(f"    {m:>4}{r['tau_gen']:>10.3g}{r['tau_mem']:>10.3g}{r['min_score_error']:>13.4g}"
                  f"{inf.get('test_loss', float('nan')):>12.4g}{inf.get('train_loss', float('nan')):>12.4g}")
        for m, s in fmr["statics"].items():
            print(f"    statics m={m}: peak of τ=∞ test loss at p={s['p_peak']} (N={s['N']}), "
                  f"value {s['test_at_peak']:.4g};"
                  f" minimum {s['min_test']:.4g} at p={s['p_min_test']}; ridge envelope max {s['envelope_max']:.4g}")
    if 3 in args.parts:
        for kind in ("variance", "weight"):
            for r in result["classes"][kind]:
                print(f"[3] {kind} of class 1 = {r['value']:<5g} τ_gen = {r['tau_gen'][0]:.3g} / {r['tau_gen'][1]:.3g}"
                      f"  τ_mem = {r['tau_mem'][0]:.3g} / {r['tau_mem'][1]:.3g}  (class 0 / class 1)")
    if 4 in args.parts:
        for r in result["subspace"]["rows"]:
            tm = "—" if r["tau_mem"] is None else f"{r['tau_mem']:.3g}"
            print(f"[4] D/d = {r['D_over_d']:<6.3g} τ_gen = {r['tau_gen']:.3g}  τ_mem = {tm}  "
                  f"min E_score = {r['min_score_error']:.4g} ({r['relative_min_score_error']:.3g} of J/d)"
                  f"  final gap = {r['final_gap']:.3g}")
    print(f"total {timings['total']:.1f} s; wrote: " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
