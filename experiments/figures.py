#!/usr/bin/env python
"""Regenerate every random-features figure of Bonnaire et al. 2025 (issue 4) with one command.

Example: python experiments/figures.py            # full sizes
         python experiments/figures.py --quick    # small sizes, a few minutes on 2 cores
         python experiments/figures.py --only spectrum,scaling

Figures (PNG + PDF in --figdir), each with theory and simulation overlaid where both exist:
  spectrum         Fig. 4/14  spectrum of U, ψ_p=64, ψ_n∈{8,32}, t=0.01, isotropic and ½δ0.5+½δ1.5
  learning_curves  Fig. 5A/B  score error, train/test loss vs τ, ψ_n∈{4,8,16,32}; insets vs τ/τ_mem
  heatmap          Fig. 5C    L_gen over (ψ_n, ψ_p) at τ=1e3, 1e4 with the boundary τ_mem = τ
  sigma_x          Fig. 12    learning curves at σ_x ∈ {0.5, 2}
  min_score        Fig. 13    min_τ E_score vs ψ_n with a power-law fit (paper ≈ -0.59)
  adam             Fig. 15    Adam training, time rescaled by n
  scaling          τ_mem and τ_gen vs n (fixed p, d) and vs p (fixed n), log-log slopes ± CI
  phase            (n, p) phase diagram at several τ from simulation, theoretical boundaries
Every unit of work is cached in --out keyed by a hash of its parameters (rerun = only what
changed; an interrupted run resumes). Writes --figdir/MANIFEST.json and, via
analysis/report.py, --figdir/REPORT.md.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "experiments"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import _figlib as fl  # noqa: E402

FIGURES = ("spectrum", "learning_curves", "heatmap", "sigma_x", "min_score", "adam", "scaling", "phase", "beyond",
           "generation")
EXTERNAL = {"beyond": "beyond.py", "generation": "generation.py"}  # studies with their own script

# sizes: "full" follows the paper where affordable on 2 CPU cores; "quick" is a smoke version
PARAMS = {
    "full": {
        "spectrum": dict(d=100, psi_p=64, psi_n=[8, 32], t=0.01, data=["isotropic", "spectrum"]),
        "learning_curves": dict(d=100, psi_p=64, psi_n=[4, 8, 16, 32], t=0.1, ge_d=100),
        "heatmap": dict(d=12, psi_n=[1, 2, 4, 8, 16, 32, 64], psi_p=[4, 8, 16, 32, 64, 128], t=0.1,
                        taus=[1e3, 1e4], exact_boundary=False),
        "sigma_x": dict(d=24, psi_p=64, psi_n=[4, 8, 16, 32], t=0.1, sigma_x=[0.5, 2.0]),
        "min_score": dict(d=48, psi_p=64, psi_n=[1, 2, 4, 8, 16, 32], t=0.1, ge_d=48),
        "adam": dict(d=8, psi_p=32, psi_n=[1, 2, 4, 8, 16], t=0.1, eta=1e-2, steps=30000, gap_level=0.3),
        "scaling": dict(d=24, t=0.1, p=3072, n=[24, 48, 96, 192, 384, 768], n_fixed=192,
                        p_scan=[768, 1536, 3072, 4608]),
        "phase": dict(taus=[1e2, 1e3, 1e4, 1e5], gap_thr=0.1),
    },
    "quick": {
        "spectrum": dict(d=16, psi_p=64, psi_n=[8, 32], t=0.01, data=["isotropic", "spectrum"]),
        "learning_curves": dict(d=16, psi_p=64, psi_n=[4, 8, 16, 32], t=0.1, ge_d=16),
        "heatmap": dict(d=8, psi_n=[1, 2, 8, 32], psi_p=[4, 16, 64], t=0.1, taus=[1e3, 1e4],
                        exact_boundary=False),
        "sigma_x": dict(d=12, psi_p=64, psi_n=[4, 8, 16, 32], t=0.1, sigma_x=[0.5, 2.0]),
        "min_score": dict(d=16, psi_p=64, psi_n=[1, 2, 4, 8, 16, 32], t=0.1, ge_d=16),
        "adam": dict(d=8, psi_p=32, psi_n=[1, 2, 4, 8], t=0.1, eta=1e-2, steps=8000, gap_level=0.3),
        "scaling": dict(d=12, t=0.1, p=1536, n=[12, 24, 48, 96, 192, 384], n_fixed=96,
                        p_scan=[384, 768, 1536]),
        "phase": dict(taus=[1e2, 1e3, 1e4, 1e5], gap_thr=0.1),
    },
}
COLORS = {4: "C0", 8: "C1", 16: "C2", 32: "C3", 1: "C4", 2: "C5", 64: "C6"}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (≤ 5 min on 2 cores)")
    ap.add_argument("--only", default=None, help=f"comma-separated subset of: {','.join(FIGURES)}")
    ap.add_argument("--seed", type=int, default=0, help="PRNG seed of every simulation")
    ap.add_argument("--out", default=str(ROOT / "results" / "figures_cache"), help="cache folder")
    ap.add_argument("--figdir", default=str(ROOT / "figures"), help="figure folder")
    ap.add_argument("--no-report", action="store_true", help="skip figures/REPORT.md")
    ap.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return ap.parse_args(argv)


# ------------------------------------------------------------------------------------------------
# helpers


class Ctx:
    def __init__(self, args):
        self.args = args
        self.mode = "quick" if args.quick else "full"
        self.cache = fl.Cache(Path(args.out) / self.mode)
        self.figdir = Path(args.figdir)
        self.seed = args.seed
        self.pending = {}  # external studies running in the background

    def bar(self, items, desc):
        from tqdm import tqdm
        return tqdm(list(items), desc=desc, disable=self.args.no_progress, file=sys.stderr, leave=False)

    def sim(self, d, p, n, t, **kw):
        par = dict(d=int(d), p=int(p), n=int(n), t=float(t), seed=self.seed, **kw)
        return self.cache.get("sim", par, fl.sim_curves)

    def theory(self, t, psi_p, psi_n, curves=False, **kw):
        par = dict(t=float(t), psi_p=float(psi_p), psi_n=float(psi_n), curves=bool(curves), **kw)
        if curves:  # test loss / score error by the deterministic equivalent (isotropic data) since v2
            par["test_curves"] = 2
        return self.cache.get("theory", par, fl.theory_predict)


def finite(x):
    return x is not None and isinstance(x, (int, float, np.floating)) and math.isfinite(float(x))


def tau_mem_asymptotic(t, psi_p, psi_n, sigma_x=1.0):
    """Theorem 3.2: τ_mem = ψ_p/(Δ_t λ_min), λ_min = s_t² + v_t²(1 - √(ψ_p/ψ_n))² (ψ_p > ψ_n; else ∞)."""
    from rfdiff.theory import ge_constants
    c = ge_constants("tanh", t, sigma_x**2)
    pp, pn = np.broadcast_arrays(np.asarray(psi_p, float), np.asarray(psi_n, float))
    lmin = c.s2 + c.v2 * (1 - np.sqrt(pp / pn)) ** 2
    return np.where(pp > pn, pp / (c.delta * lmin), np.inf)


def save(fig, ctx, name):
    from rfdiff import io
    import matplotlib.pyplot as plt
    files = io.save_figure(fig, ctx.figdir / name)
    plt.close(fig)
    return [str(f.relative_to(ctx.figdir)) if f.is_relative_to(ctx.figdir) else str(f) for f in files]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"font.size": 9, "axes.titlesize": 9, "legend.fontsize": 7})
    return plt


# ------------------------------------------------------------------------------------------------
# figures: each returns (files, key_numbers, params)


def fig_spectrum(ctx, P):
    plt = _plt()
    from mpl_toolkits.axes_grid1.inset_locator import inset_axes
    d, t = P["d"], P["t"]
    p = int(P["psi_p"] * d)
    fig, axes = plt.subplots(len(P["data"]), len(P["psi_n"]), figsize=(5.2 * len(P["psi_n"]), 3.8 * len(P["data"])),
                             squeeze=False)
    keys = {}
    jobs = [(i, j, dk, pn) for i, dk in enumerate(P["data"]) for j, pn in enumerate(P["psi_n"])]
    for i, j, dk, pn in ctx.bar(jobs, "spectrum"):
        n = int(pn * d)
        extra = {"data": dk} if dk == "isotropic" else {"data": dk, "atoms": [list(a) for a in fl.ATOMS_2]}
        sim = ctx.cache.get("spec", dict(d=d, p=p, n=n, t=t, seed=ctx.seed, **extra), fl.sim_spectrum)
        th = ctx.cache.get("thspec", dict(t=t, psi_p=float(P["psi_p"]), psi_n=float(pn),
                                          atoms=extra.get("atoms")), fl.theory_spectrum)
        lam_s, lam_t, rho = sim["eigenvalues"], th["lambdas"], th["rho"]
        edges, labels = th["edges"], th["labels"]
        pidx = labels.get("population") or [len(edges) - 1]
        pop = [min(edges[k][0] for k in pidx), max(edges[k][1] for k in pidx)]
        mem = edges[labels["memorisation"]] if labels.get("memorisation") is not None else None
        ax = axes[i, j]
        # main panel: population bulk (linear), density normalised to the whole spectrum (mass 1)
        lo, hi = pop[0] * 0.8, pop[1] * 1.1
        n_pop = int(np.sum((lam_s >= lo) & (lam_s <= hi)))
        bins = np.linspace(lo, hi, int(np.clip(1.5 * np.sqrt(n_pop), 8, 60)))
        cnt, be = np.histogram(lam_s, bins=bins)
        hist = cnt / (p * np.diff(be))
        ax.bar(be[:-1], hist, width=np.diff(be), align="edge", color="C0", alpha=0.5,
               label=f"exact U, d={d}\n(p={p}, n={n})")
        m = (lam_t >= lo) & (lam_t <= hi)
        ax.plot(lam_t[m], rho[m], "k-", lw=1.2, label="theory (Thm 3.1)")
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, max(2.1 * float(rho[m].max()), 1.05 * float(hist.max())))
        ax.set_xlabel(r"$\lambda$")
        ax.set_ylabel(r"$\rho(\lambda)$")
        lab = "isotropic" if dk == "isotropic" else r"$\rho_\Sigma=\frac{1}{2}\delta_{0.5}+\frac{1}{2}\delta_{1.5}$"
        ax.set_title(rf"{lab}, $\psi_p$={P['psi_p']}, $\psi_n$={pn}, t={t}")
        ax.legend(loc="upper left")
        # inset: atom + memorisation bulk (log axes)
        ins = inset_axes(ax, width="42%", height="40%", loc="upper right", borderpad=1.0)
        s2 = th["atom_location"]
        top = (mem[1] if mem else pop[0]) * 1.5
        lb = np.logspace(np.log10(s2 * 0.7), np.log10(top), 45)
        cnt, be = np.histogram(lam_s, bins=lb)
        ins.stairs(cnt / (p * np.diff(be)), be, fill=True, color="C0", alpha=0.5)
        mm = (lam_t <= top) & (rho > 0)
        ins.plot(lam_t[mm], rho[mm], "k.", ms=1.5)
        thd = ctx.cache.get("thgrid", dict(t=t, psi_p=float(P["psi_p"]), psi_n=float(pn), atoms=extra.get("atoms"),
                                           d=d, grid=[float(s2 * 1.2), float(top), 400]), fl.theory_density_grid)
        ins.plot(thd["lambdas"], np.where(thd["rho"] > 1e-3, thd["rho"], np.nan), color="C1", lw=0.8)  # gaps blank
        ins.plot([], [], "k.", label="Thm 3.1")
        ins.plot([], [], color="C1", label=f"finite-d (d={d})")
        ins.legend(fontsize=5, loc="lower left")
        ins.axvline(s2, color="C3", lw=1, ls="--")
        ins.set_xscale("log")
        ins.set_yscale("log")
        ins.set_ylim(1e-3, None)
        ins.tick_params(labelsize=6)
        ins.text(0.97, 0.93, rf"atom at $s_t^2$ (w={th['atom_weight']:.3f}), $\rho_1$", fontsize=6,
                 transform=ins.transAxes, ha="right", va="top")
        # key numbers: atom weight (sim = fraction within 1e-6 relative of s_t²... use a window)
        # finite d smears the atom: count the eigenvalues below the lowest theoretical bulk
        near = lam_s < edges[0][0] if edges else np.abs(lam_s - s2) < 1e-3 * s2
        pop_sim = lam_s[lam_s > 0.5 * pop[0]]
        mem_sim = lam_s[(lam_s > 1.2 * s2) & (lam_s < 0.5 * pop[0])] if mem else np.array([])
        keys[f"{dk}_psin{pn}"] = {
            "theory_edges": edges, "theory_atom_weight": th["atom_weight"],
            "atom_weight_formula": 1 - (1 + pn) / P["psi_p"], "sim_atom_fraction": float(near.mean()),
            "theory_pop_bulk": pop, "sim_pop_bulk": [float(pop_sim.min()), float(pop_sim.max())] if pop_sim.size else None,
            "sim_pop_fraction": float(pop_sim.size / p),
            "theory_mem_bulk": mem, "sim_mem_bulk": [float(mem_sim.min()), float(mem_sim.max())] if mem_sim.size else None,
            "sim_lambda_min_above_atom": float(lam_s[~near].min()) if (~near).any() else None,
            "theory_nonconverged": th["n_nonconverged"]}
    fig.subplots_adjust(hspace=0.3, wspace=0.2)
    return save(fig, ctx, "fig04_spectrum"), keys


def _curve_set(ctx, P, sigma_x=1.0, theory_curves=True):
    d, t = P["d"], P["t"]
    p = int(P["psi_p"] * d)
    out = {}
    kw = {} if sigma_x == 1.0 else {"sigma_x": float(sigma_x)}
    for pn in ctx.bar(P["psi_n"], f"curves σx={sigma_x:g}"):
        sim = ctx.sim(d, p, int(pn * d), t, **kw)
        th = dict(ctx.theory(t, P["psi_p"], pn, curves=theory_curves, ge_d=P.get("ge_d", 32), d=d, **kw))
        if theory_curves:  # Theorem 3.1 as d → ∞, for the collapse comparison
            th["tau_mem_d_inf"] = ctx.theory(t, P["psi_p"], pn, **kw).get("tau_mem")
        out[pn] = (sim, th)
    return out


def _test_method_label(res) -> str:
    """How the theory's test loss / score error was computed, for legends."""
    methods = {str((th.get("curves_method") or {}).get("score_error", "")) for _, th in res.values()}
    if methods and all(m.startswith("deterministic equivalent") for m in methods):
        return "deterministic equivalent"
    return "GE finite-d fallback"


def _mark(ax, x, color, ymark, marker="v"):
    if finite(x):
        ax.plot([x], [ymark], marker=marker, color=color, ms=6, clip_on=False, transform=ax.get_xaxis_transform())


def fig_learning_curves(ctx, P, sigma_x=1.0, name="fig05ab_learning_curves"):
    plt = _plt()
    res = _curve_set(ctx, P, sigma_x)
    fig, axs = plt.subplots(2, 2, figsize=(11, 7), gridspec_kw={"height_ratios": [1.6, 1]})
    (a1, a2), (ins1, ins2) = axs   # bottom row: the paper's insets (curves vs τ/τ_mem)
    keys = {}
    tg_th = None
    for pn, (sim, th) in res.items():
        c = COLORS.get(pn, None)
        tau = sim["tau"]
        tm_th = th.get("tau_mem")
        tg_th = th.get("tau_gen")
        a1.loglog(tau, sim["score_error"], color=c, label=rf"$\psi_n$={pn}")
        if "score_error" in th:
            a1.loglog(tau, th["score_error"], color=c, ls=":", lw=1)
        a2.semilogx(tau, sim["train_loss"], color=c, label=rf"train $\psi_n$={pn}")
        a2.semilogx(tau, sim["test_loss"], color=c, ls="--", label=rf"test $\psi_n$={pn}")
        if "train_loss" in th:
            a2.semilogx(tau, th["train_loss"], color="k", ls=":", lw=0.9)
        if "test_loss" in th:
            a2.semilogx(tau, th["test_loss"], color="k", ls="-.", lw=0.9)
        if finite(tm_th):
            ins1.loglog(tau / tm_th, sim["score_error"], color=c)
            ins2.semilogx(tau / tm_th, sim["gen_gap"], color=c)
        for a in (a1, a2):
            _mark(a, tm_th, c, 0.0, "^")
        keys[f"psin{pn}"] = {"tau_mem_sim": sim["tau_mem"], "tau_mem_theory": tm_th,
                             "tau_mem_theory_d_inf": th.get("tau_mem_d_inf"),
                             "tau_mem_asymptotic": th.get("tau_mem_asymptotic"),
                             "tau_gen_sim": sim["tau_gen"], "tau_gen_theory": tg_th,
                             "min_score_error_sim": sim["min_score_error"],
                             "train_inf_sim": float(sim["train_loss"][-1]), "train_inf_theory": th.get("train_loss_inf"),
                             "final_gap_sim": sim["final_gap"]}
    for a in (a1, a2):
        if finite(tg_th):
            a.axvline(tg_th, color="gray", lw=1, ls="-.", label=r"$\tau_{gen}$ (theory)")
        a.set_xlabel(r"training time $\tau$")
        a.set_xlim(1e-1, 1e7)
    a1.plot([], [], "k:", label=f"theory ({_test_method_label(res)})")
    a1.plot([], [], "k^", ls="none", label=r"$\tau_{mem}$ (theory)")
    a1.set_ylabel(r"score error $E_{score}$")
    a2.plot([], [], "k:", label="train, theory")
    a2.plot([], [], "k-.", label="test, theory")
    a2.set_ylabel("loss")
    a2.set_ylim(0, 1.6)
    ins1.set_ylabel(r"$E_{score}$")
    ins2.set_ylabel(r"$L_{gen} = L_{test} - L_{train}$")
    for a in (ins1, ins2):
        a.set_xlabel(r"$\tau/\tau_{mem}$ ($\tau_{mem}$ from theory, Thm 3.1 at finite d)")
        a.set_xlim(1e-4, 1e3)
    a1.legend(loc="upper right", ncol=2)
    a2.legend(loc="upper right", ncol=2, fontsize=6)
    d = P["d"]
    fig.suptitle(rf"RF score, tanh, $\sigma_x$={sigma_x:g}, $\psi_p$={P['psi_p']}, t={P['t']}, d={d}")
    fig.tight_layout()
    # collapse measure: τ_mem_sim/τ_mem_theory across ψ_n
    ratios = [v["tau_mem_sim"] / v["tau_mem_theory"] for v in keys.values()
              if finite(v["tau_mem_sim"]) and finite(v["tau_mem_theory"])]
    keys["collapse_ratio_sim_over_theory"] = {"values": ratios,
                                              "spread_max_over_min": max(ratios) / min(ratios) if ratios else None}
    r_inf = [v["tau_mem_sim"] / v["tau_mem_theory_d_inf"] for k, v in keys.items() if k.startswith("psin")
             and finite(v["tau_mem_sim"]) and finite(v["tau_mem_theory_d_inf"])]
    keys["collapse_ratio_sim_over_theory_d_inf"] = {"values": r_inf,
                                                    "spread_max_over_min": max(r_inf) / min(r_inf) if r_inf else None}
    return save(fig, ctx, name), keys


def fig_sigma_x(ctx, P):
    plt = _plt()
    fig, axes = plt.subplots(len(P["sigma_x"]), 2, figsize=(11, 3.6 * len(P["sigma_x"])), squeeze=False)
    keys = {}
    for i, sx in enumerate(P["sigma_x"]):
        res = _curve_set(ctx, P, sx, theory_curves=False)
        a1, a2 = axes[i]
        tms, pns = [], []
        for pn, (sim, th) in res.items():
            c = COLORS.get(pn)
            tau = sim["tau"]
            a1.loglog(tau, sim["score_error"], color=c, label=rf"$\psi_n$={pn}")
            a2.semilogx(tau, sim["train_loss"], color=c, label=rf"train $\psi_n$={pn}")
            a2.semilogx(tau, sim["test_loss"], color=c, ls="--")
            for a in (a1, a2):
                _mark(a, th.get("tau_mem"), c, 0.0, "^")
            tms.append(sim["tau_mem"])
            pns.append(pn)
            keys[f"sx{sx:g}_psin{pn}"] = {"tau_mem_sim": sim["tau_mem"], "tau_mem_theory": th.get("tau_mem"),
                                          "tau_gen_sim": sim["tau_gen"], "tau_gen_theory": th.get("tau_gen")}
        from analysis.fits import fit_power_law
        keys[f"sx{sx:g}_tau_mem_slope_sim"] = fit_power_law(pns, tms)
        tg = th.get("tau_gen")
        for a in (a1, a2):
            if finite(tg):
                a.axvline(tg, color="gray", ls="-.", lw=1, label=r"$\tau_{gen}$ (theory)")
            a.set_xlabel(r"$\tau$")
            a.set_title(rf"$\sigma_x$={sx:g}, $\psi_p$={P['psi_p']}, t={P['t']}, d={P['d']}")
        a1.set_ylabel(r"$E_{score}$")
        a2.set_ylabel("train (—) / test (--) loss")
        a1.plot([], [], "k^", ls="none", label=r"$\tau_{mem}$ (theory)")
        a1.legend(fontsize=7, ncol=2)
        a2.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return save(fig, ctx, "fig12_sigma_x"), keys


def fig_min_score(ctx, P):
    plt = _plt()
    from analysis.fits import fit_power_law
    res = _curve_set(ctx, P)
    pns = np.array(list(res))
    ms = np.array([res[k][0]["min_score_error"] for k in res])
    mt = np.array([float(np.min(res[k][1]["score_error"])) if "score_error" in res[k][1] else np.nan for k in res])
    fs, ft = fit_power_law(pns, ms), fit_power_law(pns, mt)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.loglog(pns, ms, "o", color="C0", label=f"simulation (d={P['d']})")
    ax.loglog(pns, mt, "s", mfc="none", color="C1", label=f"theory ({_test_method_label(res)})")
    xx = np.geomspace(pns.min(), pns.max(), 50)
    ax.loglog(xx, fs["prefactor"] * xx ** fs["slope"], "C0-",
              label=rf"fit: slope {fs['slope']:.2f} $\pm$ {fs['slope_se']:.2f}")
    if finite(ft["slope"]):
        ax.loglog(xx, ft["prefactor"] * xx ** ft["slope"], "C1--", label=rf"fit theory: {ft['slope']:.2f}")
    ax.loglog(xx, fs["prefactor"] * xx[0] ** (fs["slope"] + 0.59) * xx ** -0.59, "k:", lw=1,
              label=r"paper: $\psi_n^{-0.59}$")
    ax.set_xlabel(r"$\psi_n = n/d$")
    ax.set_ylabel(r"$\min_\tau E_{score}$")
    ax.set_title(rf"$\psi_p$={P['psi_p']}, t={P['t']}")
    ax.legend()
    fig.tight_layout()
    keys = {"psi_n": pns.tolist(), "min_score_sim": ms.tolist(), "min_score_theory": mt.tolist(),
            "fit_sim": fs, "fit_theory": ft, "paper_exponent": -0.59}
    return save(fig, ctx, "fig13_min_score"), keys


def fig_adam(ctx, P):
    plt = _plt()
    from analysis.fits import fit_power_law
    d, t = P["d"], P["t"]
    p = int(P["psi_p"] * d)
    tau_max = P["steps"] * P["eta"] / d**2
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    keys, ns, tms = {}, [], []
    for pn in ctx.bar(P["psi_n"], "adam"):
        n = int(pn * d)
        r = ctx.cache.get("adam", dict(d=d, p=p, n=n, t=t, seed=ctx.seed, eta=P["eta"], tau_max=tau_max),
                          fl.adam_curves)
        c = COLORS.get(pn)
        tau = r["tau"]
        from rfdiff import timescales
        r["tau_mem"] = timescales.tau_mem(tau, r["gen_gap"], 0.5, P["gap_level"])["tau_mem_abs"]
        a1.semilogx(tau, r["train_loss"], color=c, label=f"train n={n}")
        a1.semilogx(tau, r["test_loss"], color=c, ls="--", label=f"test n={n}")
        a2.semilogx(tau / n, r["train_loss"], color=c, label=f"n={n}")
        a2.semilogx(tau / n, r["test_loss"], color=c, ls="--")
        _mark(a1, r["tau_mem"], c, 0.0, "^")
        _mark(a2, r["tau_mem"] / n if finite(r["tau_mem"]) else None, c, 0.0, "^")
        ns.append(n)
        tms.append(r["tau_mem"])
        keys[f"n{n}"] = {"tau_mem": r["tau_mem"], "tau_mem_over_n": r["tau_mem"] / n if finite(r["tau_mem"]) else None,
                         "final_gap": r["final_gap"]}
    keys["tau_mem_slope_vs_n"] = fit_power_law(ns, tms)
    a1.set_xlabel(r"$\tau = k\eta/d^2$")
    a2.set_xlabel(r"$\tau / n$")
    for a in (a1, a2):
        a.set_ylabel("train (—) / test (--) loss")
        a.set_title(rf"Adam ($\eta$={P['eta']:g}), d={d}, p={p}, t={t}")
    a1.plot([], [], "k^", ls="none", label=rf"$\tau_{{mem}}$ (sim): $L_{{gen}}$ = {P['gap_level']}")
    a1.legend(ncol=2, fontsize=6)
    a2.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, ctx, "fig15_adam"), keys


def fig_scaling(ctx, P):
    plt = _plt()
    from analysis.fits import fit_power_law
    d, t = P["d"], P["t"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    keys = {}

    def scan(pairs, desc):
        rows = []
        for p, n in ctx.bar(pairs, desc):
            sim = ctx.sim(d, p, n, t)
            th = ctx.theory(t, p / d, n / d, d=d)
            rows.append(dict(p=p, n=n, tm_s=sim["tau_mem"], tg_s=sim["tau_gen"], tm_t=th.get("tau_mem"),
                             tm_a=th.get("tau_mem_asymptotic"), tg_t=th.get("tau_gen")))
        return rows

    for ax, rows, var, lab in ((a1, scan([(P["p"], n) for n in P["n"]], "scaling vs n"), "n", "n"),
                               (a2, scan([(p, P["n_fixed"]) for p in P["p_scan"]], "scaling vs p"), "p", "p")):
        x = np.array([r[var] for r in rows], float)
        series = [("tm_s", r"$\tau_{mem}$ sim", "C3", "o-"), ("tm_t", r"$\tau_{mem}$ theory (Thm 3.1, finite d)", "C3", "s--"),
                  ("tm_a", r"$\tau_{mem}$ asymptotic (Thm 3.2)", "C1", "x:"),
                  ("tg_s", r"$\tau_{gen}$ sim", "C0", "o-"), ("tg_t", r"$\tau_{gen}$ theory", "C0", "s--")]
        fits = {}
        for k, lab2, c, st in series:
            y = np.array([r[k] if finite(r[k]) else np.nan for r in rows], float)
            f = fit_power_law(x, y)
            fits[k] = f
            ax.loglog(x, y, st, color=c, mfc="none" if "s" in st else c,
                      label=f"{lab2}: slope {f['slope']:.2f}" + (rf"$\pm${f['slope_se']:.2f}"
                                                                  if finite(f['slope_se']) else ""))
        if var == "n":
            sel = x / d >= 2
            for k in ("tm_s", "tm_t", "tg_s", "tg_t"):
                y = np.array([r[k] if finite(r[k]) else np.nan for r in rows], float)
                fits[k + "_psin_ge2"] = fit_power_law(x[sel], y[sel])
        from matplotlib.ticker import NullFormatter
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"${lab}$")
        ax.set_ylabel(r"$\tau$")
        ax.legend(fontsize=6)
        fixed = f"p={P['p']}" if var == "n" else f"n={P['n_fixed']}"
        ax.set_title(f"vs {var} at fixed {fixed}, d={d}, t={t}")
        keys[f"vs_{var}"] = {"x": x.tolist(), "rows": rows, "fits": fits}
    fig.tight_layout()
    return save(fig, ctx, "scaling_timescales"), keys


def _grid(ctx, P):
    d, t = P["d"], P["t"]
    G = {}
    jobs = [(pn, pp) for pp in P["psi_p"] for pn in P["psi_n"]]
    for pn, pp in ctx.bar(jobs, "grid (ψ_n, ψ_p)"):
        G[(pn, pp)] = ctx.sim(d, int(pp * d), int(pn * d), t)
    return G


def _gap_at(sim, tau):
    return float(np.interp(np.log(tau), np.log(sim["tau"]), sim["gen_gap"]))


def _boundaries(ax, P, tau, exact=None):
    pn = np.geomspace(min(P["psi_n"]) / 1.5, max(P["psi_n"]) * 1.5, 300)
    pp = np.geomspace(min(P["psi_p"]) / 1.5, max(P["psi_p"]) * 1.5, 300)
    PN, PP = np.meshgrid(pn, pp)
    TM = tau_mem_asymptotic(P["t"], PP, PN)
    cs = ax.contour(PN, PP, np.log10(np.where(np.isfinite(TM), TM, 1e30)), levels=[math.log10(tau)], colors="w",
                    linewidths=1.5)
    ax.plot([], [], "w-", label=r"$\tau_{mem}(\psi_n,\psi_p)=\tau$ (Thm 3.2)")
    if exact:
        xs, ys = np.array([k[0] for k in exact], float), np.array([k[1] for k in exact], float)
        v = np.array([exact[k] for k in exact], float)
        ux, uy = np.unique(xs), np.unique(ys)
        Z = np.full((uy.size, ux.size), np.nan)
        for x0, y0, z in zip(xs, ys, v):
            Z[np.searchsorted(uy, y0), np.searchsorted(ux, x0)] = math.log10(z) if finite(z) and z > 0 else 30
        ax.contour(ux, uy, Z, levels=[math.log10(tau)], colors="cyan", linestyles="--", linewidths=1.2)
        ax.plot([], [], "c--", label=r"$\tau_{mem}=\tau$ (Thm 3.1, exact)")
    lo, hi = min(pn[0], pp[0]), max(pn[-1], pp[-1])
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label=r"$n=p$")
    ax.set_xlim(pn[0], pn[-1])
    ax.set_ylim(pp[0], pp[-1])
    return cs


def _edges_log(v):
    v = np.log(np.asarray(v, float))
    mid = (v[1:] + v[:-1]) / 2
    return np.exp(np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]]))


def fig_heatmap(ctx, P):
    plt = _plt()
    G = _grid(ctx, P)
    exact = None
    if P.get("exact_boundary"):
        exact = {}
        for pn, pp in ctx.bar([(pn, pp) for pp in P["psi_p"] for pn in P["psi_n"]], "theory τ_mem grid"):
            exact[(pn, pp)] = ctx.theory(P["t"], pp, pn, d=P["d"]).get("tau_mem") if pp > pn else math.inf
    fig, axes = plt.subplots(1, len(P["taus"]), figsize=(5.2 * len(P["taus"]), 4.2), squeeze=False)
    keys = {}
    for ax, tau in zip(axes[0], P["taus"]):
        Z = np.array([[_gap_at(G[(pn, pp)], tau) for pn in P["psi_n"]] for pp in P["psi_p"]])
        im = ax.pcolormesh(_edges_log(P["psi_n"]), _edges_log(P["psi_p"]), Z, cmap="magma", shading="flat",
                           vmin=0, vmax=max(1e-3, float(np.nanmax(Z))))
        _boundaries(ax, P, tau, exact)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"$\psi_n = n/d$")
        ax.set_ylabel(r"$\psi_p = p/d$")
        ax.set_title(rf"$L_{{gen}}$ at $\tau$={tau:.0e} (d={P['d']}, t={P['t']})")
        fig.colorbar(im, ax=ax, label=r"$L_{gen} = L_{test}-L_{train}$")
        ax.legend(loc="lower right", fontsize=6, facecolor="0.7")
        keys[f"tau{tau:.0e}"] = {"L_gen": Z.tolist(), "max": float(np.nanmax(Z))}
    keys["psi_n"], keys["psi_p"] = P["psi_n"], P["psi_p"]
    if exact:
        keys["tau_mem_theory_grid"] = {f"{k[0]},{k[1]}": v for k, v in exact.items()}
    fig.tight_layout()
    return save(fig, ctx, "fig05c_heatmap"), keys


def fig_phase(ctx, P, H):
    """Phase diagram on the heatmap grid H (same simulations) at several τ."""
    plt = _plt()
    from matplotlib.colors import ListedColormap
    G = _grid(ctx, H)
    d = H["d"]
    thr = P["gap_thr"]
    cmap = ListedColormap(["#d62728", "#2ca02c", "#1f77b4"])
    names = ["memorisation", "dynamical regularisation", "architectural regularisation"]
    fig, axes = plt.subplots(1, len(P["taus"]), figsize=(4.3 * len(P["taus"]), 4), squeeze=False)
    keys = {"gap_threshold": thr, "counts": {}}
    agree = tot = 0
    for ax, tau in zip(axes[0], P["taus"]):
        Z = np.zeros((len(H["psi_p"]), len(H["psi_n"])))
        for i, pp in enumerate(H["psi_p"]):
            for j, pn in enumerate(H["psi_n"]):
                s = G[(pn, pp)]
                if s["final_gap"] < thr:          # no memorisation even at τ = ∞
                    Z[i, j] = 2
                elif not tau >= s["tau_mem"]:     # τ < τ_mem (sim: L_gen < ½ L_gen(∞)): early stopping works
                    Z[i, j] = 1
                else:
                    Z[i, j] = 0
                # theory label: n > p → architectural; τ < τ_mem → dynamical; else memorisation
                tm = float(tau_mem_asymptotic(H["t"], pp, pn))
                th_lab = 2 if pn >= pp else (1 if tau < tm else 0)
                agree += int(th_lab == Z[i, j])
                tot += 1
        ax.pcolormesh(_edges_log(np.array(H["psi_n"]) * d), _edges_log(np.array(H["psi_p"]) * d), Z, cmap=cmap,
                      vmin=-0.5, vmax=2.5, shading="flat")
        P2 = dict(H, psi_n=[x * d for x in H["psi_n"]], psi_p=[x * d for x in H["psi_p"]])
        # boundaries in (n, p) units
        pn = np.geomspace(min(P2["psi_n"]) / 1.5, max(P2["psi_n"]) * 1.5, 300)
        pp = np.geomspace(min(P2["psi_p"]) / 1.5, max(P2["psi_p"]) * 1.5, 300)
        PN, PP = np.meshgrid(pn, pp)
        TM = tau_mem_asymptotic(H["t"], PP / d, PN / d)
        ax.contour(PN, PP, np.log10(np.where(np.isfinite(TM), TM, 1e30)), levels=[math.log10(tau)], colors="k",
                   linewidths=1.5)
        ax.plot([pn[0], pn[-1]], [pn[0], pn[-1]], "k--", lw=1)
        ax.set_xlim(pn[0], pn[-1])
        ax.set_ylim(pp[0], pp[-1])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("n")
        ax.set_ylabel("p")
        ax.set_title(rf"$\tau$ = {tau:.0e} (d={d})")
        keys["counts"][f"tau{tau:.0e}"] = {nm: int(np.sum(Z == k)) for k, nm in enumerate(names)}
    from matplotlib.patches import Patch
    from matplotlib.lines import Line2D
    handles = [Patch(color=cmap(k), label=nm) for k, nm in enumerate(names)]
    handles += [Line2D([], [], color="k", lw=1.5, label=r"$\tau_{mem}(n,p)=\tau$ (theory)"),
                Line2D([], [], color="k", ls="--", lw=1, label="n = p")]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=7, bbox_to_anchor=(0.5, -0.04))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    keys["theory_sim_label_agreement"] = agree / tot if tot else None
    return save(fig, ctx, "phase_diagram"), keys


# ------------------------------------------------------------------------------------------------


def run_figure(ctx, name, P_all):
    P = P_all.get(name)
    if name == "spectrum":
        return fig_spectrum(ctx, P)
    if name == "learning_curves":
        return fig_learning_curves(ctx, P)
    if name == "heatmap":
        return fig_heatmap(ctx, P)
    if name == "sigma_x":
        return fig_sigma_x(ctx, P)
    if name == "min_score":
        return fig_min_score(ctx, P)
    if name == "adam":
        return fig_adam(ctx, P)
    if name == "scaling":
        return fig_scaling(ctx, P)
    if name == "phase":
        return fig_phase(ctx, P, P_all["heatmap"])
    if name in EXTERNAL:
        return run_external(ctx, name)
    raise ValueError(name)


def start_external(ctx, name):
    """Start experiments/<script> in the background (None when its cached results exist).

    The external studies run beside the in-process figures: on 2 cores much of a unit is single-threaded
    (compilation, Python), so overlapping them shortens the wall time.
    """
    import subprocess

    out = Path(ctx.cache.root) / name
    if sorted(out.glob("*.json")):
        return None
    cmd = [sys.executable, str(ROOT / "experiments" / EXTERNAL[name]), "--out", str(out),
           "--figdir", str(ctx.figdir), "--seed", str(ctx.args.seed)] + (["--quick"] if ctx.args.quick else [])
    if ctx.args.no_progress:
        cmd.append("--no-progress")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "run.log", "w") as log:  # its printed tables; the child keeps its own handle
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def run_external(ctx, name):
    """Collect experiments/<script> results (started by :func:`start_external`, or run now) with figures in figdir."""
    import subprocess

    out = Path(ctx.cache.root) / name
    proc = ctx.pending.pop(name, None) or start_external(ctx, name)
    if proc is not None:
        if proc.wait() != 0:
            print((out / "run.log").read_text()[-3000:], file=sys.stderr)
            raise subprocess.CalledProcessError(proc.returncode, proc.args)
        ctx.cache.computed += 1
    results = sorted(out.glob("*.json"))
    files = sorted(f.name for f in ctx.figdir.glob(f"{name}_*.p[nd][gf]"))
    keys = {r.stem: json.loads(r.read_text()).get("key_numbers", r.name) for r in results}
    return files, keys


def main(argv=None) -> int:
    args = parse_args(argv)
    names = FIGURES if not args.only else tuple(s.strip() for s in args.only.split(",") if s.strip())
    bad = [n for n in names if n not in FIGURES]
    if bad:
        print(f"error: unknown figure(s) {bad}; valid: {', '.join(FIGURES)}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    import rfdiff
    from rfdiff import io
    ctx = Ctx(args)
    P_all = PARAMS[ctx.mode]
    ctx.figdir.mkdir(parents=True, exist_ok=True)
    ctx.pending = {n: proc for n in names if n in EXTERNAL and (proc := start_external(ctx, n)) is not None}
    man_path = ctx.figdir / "MANIFEST.json"
    manifest = json.loads(man_path.read_text()) if man_path.exists() else {}
    manifest.setdefault("figures", {})
    meta = io.run_metadata()
    t_all = time.perf_counter()
    for name in tqdm(names, desc="figures", disable=args.no_progress, file=sys.stderr):
        t0 = time.perf_counter()
        c0 = ctx.cache.computed
        files, keys = run_figure(ctx, name, P_all)
        params = dict(P_all.get(name) or {"script": f"experiments/{EXTERNAL.get(name)}"})
        if name == "phase":
            params["grid"] = P_all["heatmap"]
        cmd = f"python experiments/figures.py{' --quick' if args.quick else ''} --only {name} --seed {args.seed}"
        manifest["figures"][name] = {
            "command": cmd, "mode": ctx.mode, "seed": args.seed, "parameters": params, "files": files,
            "rfdiff_version": rfdiff.__version__, "versions": meta["versions"], "git_commit": meta["git_commit"],
            "run_time_s": time.perf_counter() - t0, "units_computed": ctx.cache.computed - c0,
            "key_numbers": io.to_jsonable(keys)}
        io.save_json(man_path, manifest)   # after every figure: an interrupted run keeps what is done
    manifest["last_run"] = {"mode": ctx.mode, "figures": list(names), "wall_time_s": time.perf_counter() - t_all,
                            "units_computed": ctx.cache.computed, "units_loaded": ctx.cache.loaded,
                            "cache": str(ctx.cache.root), "metadata": meta}
    io.save_json(man_path, manifest)
    print(f"{len(names)} figure(s) in {time.perf_counter() - t_all:.1f}s "
          f"({ctx.cache.computed} units computed, {ctx.cache.loaded} from cache) -> {ctx.figdir}")
    if not args.no_report:
        from analysis.report import write_report
        print(f"report: {write_report(man_path, ctx.figdir / 'REPORT.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
