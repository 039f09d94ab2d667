"""Figures of the beyond-the-paper study (rfdiff.pipelines.beyond): plotting only, numbers from its result."""
from __future__ import annotations

import numpy as np

from .plots import pyplot


def _lab(label: str) -> str:
    return r"$m=\infty$ (exact average)" if label == "inf" else f"m = {label}"


def finite_m_figure(res):
    """Train loss (frozen draws and noise-averaged), test loss, score error and empirical distance vs τ, per m."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.2))
    for i, r in enumerate(res.finite_m):
        c, col, lab = r.curves, f"C{i}", _lab(r.label)
        frozen = c.get("train_loss_frozen")
        axes[0].semilogx(c.tau, c.train_loss if frozen is None else frozen, color=col, label=lab)
        if frozen is not None:
            axes[0].semilogx(c.tau, c.train_loss, color=col, ls=":", lw=1)
        axes[1].semilogx(c.tau, c.test_loss, color=col, label=lab)
        axes[2].loglog(c.tau, c.score_error, color=col, label=lab)
        axes[3].loglog(c.tau, c.emp_distance, color=col, label=lab)
    axes[0].set_title("train loss: on the frozen draws (solid),\nnoise-averaged (dotted)")
    axes[0].set_ylim(-0.02, 1.25)
    axes[1].set_title("test loss")
    hi = max(float(np.max(r.curves.test_loss)) for r in res.finite_m)
    axes[1].set_ylim(0.6, min(hi * 1.05, 3.0))
    axes[2].set_title(r"score error $E_{score}$")
    axes[3].set_title("distance to the empirical score")
    for a in axes:
        a.set_xlabel(r"training time $\tau$")
        a.legend(fontsize=7)
    u = res.finite_m[0].unit
    fig.suptitle(f"Training on m frozen noise draws per point: d={u.d}, p={u.p}, n={u.n}, t={u.t:g}, tanh", fontsize=10)
    fig.tight_layout()
    return fig


def _sweeps(res) -> list:
    """(label, StaticsSweep) with m = ∞ last."""
    return [(r.label, r.statics) for r in res.finite_m if r.statics is not None]


def interpolation_figure(res):
    """τ → ∞ test and train loss (λ = 0) vs ψ_p per m, with the thresholds p = n·m and p = n."""
    plt = pyplot()
    u = res.finite_m[0].unit
    d, n = u.d, u.n
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    for i, (label, sw) in enumerate(_sweeps(res)):
        col, lab = f"C{i}", (r"$m=\infty$" if label == "inf" else f"m = {label}")
        train = sw.train_loss if sw.train_loss_frozen is None else sw.train_loss_frozen
        axes[0].loglog(sw.p / d, sw.test_loss[:, 0], "o-", ms=3, color=col, label=lab)
        axes[1].semilogx(sw.p / d, train[:, 0], "o-", ms=3, color=col, label=lab)
        if label != "inf":
            for a in axes:
                a.axvline(n * int(label) / d, color=col, ls=":", lw=1)
    for a in axes:
        a.axvline(n / d, color="k", ls="--", lw=0.8, label=r"$p = n$")
        a.set_xlabel(r"$\psi_p = p/d$")
        a.legend(fontsize=7)
    axes[0].set_ylabel(r"test loss at $\tau\to\infty$ (min-norm)")
    axes[0].set_title("interpolation peak at p = nm (dotted), rise from p ≈ n")
    axes[1].set_ylabel(r"train loss at $\tau\to\infty$ (frozen draws)")
    fig.suptitle(f"τ → ∞ statics vs ψ_p: d={d}, n={n}, t={u.t:g}", fontsize=10)
    fig.tight_layout()
    return fig


def ridge_figure(res):
    """Lower envelope over λ of the τ → ∞ test loss and the optimal λ vs ψ_p per m; ridge dynamics at p_max."""
    plt = pyplot()
    rd, u = res.ridge, res.ridge.unit
    d, n = u.d, u.n
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    sweeps = _sweeps(res)
    sweeps = sweeps[-1:] + sweeps[:-1]                      # m = ∞ first
    lows = []
    for i, (label, sw) in enumerate(sweeps):
        env = sw.envelope()
        lows.append(env["value"].min())
        col, lab = f"C{i}", (r"$m=\infty$" if label == "inf" else f"m = {label}")
        axes[0].semilogx(sw.p / d, sw.test_loss[:, 0], ":", color=col, lw=1)
        axes[0].semilogx(sw.p / d, env["value"], "o-", ms=3, color=col, label=f"{lab}: min over λ")
        axes[1].loglog(sw.p / d, np.maximum(env["ridge"], 1e-7), "o-", ms=3, color=col, label=lab)
    axes[0].semilogx(rd.p / d, rd.early_stopping_test, "k--", lw=1.2,
                     label=r"$m=\infty$, λ = 0: min over τ (early stopping)")
    axes[0].plot([], [], "k:", lw=1, label="λ = 0 (τ → ∞), same colours")
    axes[0].set_ylim(min(lows + [float(np.min(rd.early_stopping_test))]) - 0.02, 1.6)
    axes[0].set_ylabel(r"test loss at $\tau\to\infty$")
    axes[0].set_title("lower envelope over λ of the τ → ∞ test loss")
    axes[1].set_ylabel(r"optimal ridge $\lambda^*$")
    r = sweeps[0][1].ridge
    axes[1].set_title(f"optimal λ (log grid {r[1]:.0e} … {r[-1]:.0e})")
    for a in axes[:2]:
        a.axvline(n / d, color="k", ls="--", lw=0.8)
        a.set_xlabel(r"$\psi_p = p/d$")
        a.legend(fontsize=7)
    for j, (lam, c) in enumerate(zip(rd.lambdas, rd.curves)):
        axes[2].semilogx(c.tau, c.test_loss, color=f"C{j}", label=f"λ = {lam:.3g}")
    axes[2].set_xlabel(r"training time $\tau$")
    axes[2].set_ylabel("test loss")
    axes[2].set_title(f"ridge dynamics, m = ∞, p = {u.p} (λ* = optimal at this p)")
    axes[2].legend(fontsize=7)
    fig.suptitle(f"Ridge penalty (Δ_t λ/(dp))‖A‖² (U → U + λI): d={d}, n={n}, t={u.t:g}; dashed vertical: p = n",
                 fontsize=10)
    fig.tight_layout()
    return fig


def classes_figure(res):
    """Per-class τ_gen and τ_mem vs the variance and vs the weight of class 1."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    for a, kind, xl in ((axes[0], "variance", "variance of class 1 (class 0: variance 1)"),
                        (axes[1], "weight", "weight of class 1 (both variances 1)")):
        rows = [r.row() for r in res.classes if r.unit.kind == kind]
        if not rows:
            continue
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
    axes[0].set_title("per-class timescales vs class variance")
    axes[1].set_title("per-class timescales vs class weight")
    u = res.classes[0].unit
    fig.suptitle(f"Two-class mixture ±{u.mu_norm:g}e₁: d={u.d}, p={u.p}, n={u.n}, t={u.t:g}", fontsize=10)
    fig.tight_layout()
    return fig


def subspace_figure(res):
    """E_score/(J/d) vs τ per D; τ_mem and τ_gen vs D/d; the minimal score error vs D/d."""
    plt = pyplot()
    rows = [r.row() for r in res.subspace]
    x = [r["D_over_d"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.3))
    for i, (r, row) in enumerate(zip(res.subspace, rows)):
        axes[0].loglog(r.curves.tau, r.curves.score_error / row["J_over_d"], color=f"C{i}", label=f"D/d = {x[i]:.3g}")
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
    u = res.subspace[0].unit
    fig.suptitle(f"Subspace data (intrinsic dimension D): d={u.d}, p={u.p}, n={u.n}, t={u.t:g}", fontsize=10)
    fig.tight_layout()
    return fig


FIGURES = {"finite_m": finite_m_figure, "interpolation": interpolation_figure, "ridge": ridge_figure,
           "classes": classes_figure, "subspace": subspace_figure}


def figure_names(res) -> list[str]:
    """Names of :data:`FIGURES` that ``res`` (a :class:`rfdiff.pipelines.beyond.BeyondResult`) has data for."""
    have = {"finite_m": bool(res.finite_m), "interpolation": bool(res.finite_m),
            "ridge": res.ridge is not None and bool(res.finite_m), "classes": bool(res.classes),
            "subspace": bool(res.subspace)}
    return [name for name in FIGURES if have[name]]
