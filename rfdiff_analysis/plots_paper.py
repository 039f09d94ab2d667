"""The paper's figures drawn from the figures sweep (plotting only: every number comes from the typed summaries of
rfdiff.pipelines.paper and the labelled results they name)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rfdiff.pipelines import paper

from .plots import pyplot, save

NAMES = {"finite_size_scaling": "finite_size_scaling", "spectrum": "fig04_spectrum",
         "learning_curves": "fig05ab_learning_curves", "heatmap": "fig05c_heatmap", "sigma_x": "fig12_sigma_x",
         "min_score": "fig13_min_score", "adam": "fig15_adam", "scaling": "scaling_timescales",
         "phase": "phase_diagram", "procedure": "procedure_fresh_noise"}
LABELS = {"train_loss_inf": r"$L_{train}(\infty)$", "test_loss_inf": r"$L_{test}(\infty)$",
          "min_score_error": r"$\min_\tau E_{score}$", "tau_gen": r"$\tau_{gen}$", "tau_mem": r"$\tau_{mem}$",
          "lambda_mem": r"$\lambda_{mem}$ (lower edge)", "lambda_mem_upper": r"memorisation bulk, upper edge"}
# the timescale figure's series: marker, colour (of the points and of their fit line), fit line style, legend name
SCALING_SERIES = {"tau_mem_sim": ("o", "C3", "-", "τ_mem simulation"), "tau_mem_theory": ("s", "C1", "--", "τ_mem theory"),
                  "tau_gen_sim": ("o", "C0", "-", "τ_gen simulation"), "tau_gen_theory": ("s", "C2", "--", "τ_gen theory")}


def make_figure(name: str, preset: paper.Preset, summary, results: paper.Results):
    """The matplotlib Figure of ``name`` (a key of :data:`NAMES`) from its summary and labelled results, unsaved."""
    if name not in NAMES:
        raise ValueError(f"figure must be one of {sorted(NAMES)}, got {name!r}")
    return globals()[f"_{name}"](preset, summary, results)


def draw(figure: str, preset: paper.Preset, summary, results: paper.Results, figdir, **save_kw) -> list[Path]:
    """Draw ``figure`` into ``figdir`` (PNG + PDF) from its summary and labelled results; returns the files."""
    fig = make_figure(figure, preset, summary, results)
    return save(fig, Path(figdir) / NAMES[figure], **save_kw)


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float, np.floating)) and math.isfinite(float(x))


def _finite_size_fit_line(ax, fit, inv_n, style, color, label=None):
    """The fitted model ``fit.predict(n)`` (the γ and terms the fit kept) against 1/n, from 1/n = 0 (``a``) to past
    the data, on a grid that holds the data's own 1/n; returns the line."""
    xx = np.union1d(np.linspace(0.0, float(np.max(inv_n)) * 1.05, 200), np.asarray(inv_n, dtype=np.float64))
    nn = np.where(xx > 0, 1.0 / np.where(xx > 0, xx, 1.0), np.inf)
    return ax.plot(xx, fit.predict(nn), style, color=color, lw=1, label=label)[0]


def _fit_terms(fit) -> str:
    """The terms a finite-size fit kept, e.g. ``n^-0.5 + n^-1``."""
    return f"n^-{fit.gamma:g}" + (f" + n^-{fit.gamma2:g}" if fit.c is not None and fit.gamma2 is not None else
                                   f" + n^-{2 * fit.gamma:g}" if fit.c is not None else "")


def _finite_size_scaling(P, S, R):
    plt = pyplot()
    qs = paper.LADDER_QUANTITIES
    fig, axes = plt.subplots(2, 4, figsize=(18, 8))
    key_handles = []                                  # points, extrapolations and theory: one legend, in the spare panel
    for ax, q in zip(axes.ravel(), qs):
        fit_handles = []                              # the fits of this panel, each with the terms it kept
        for i, blk in enumerate(S.blocks):
            col, key = f"C{i}", f"t={blk.t:g}, ψ_n={blk.psi_n:g}"
            for model, mk in (("exact", "o"), ("ge", "x")):
                pts = blk.points[model]
                if not pts:
                    continue
                x = np.array([1.0 / pt.n for pt in pts])
                y = np.array([pt.values[q] for pt in pts])
                h = ax.plot(x, y, mk, color=col, ms=4, alpha=0.8, label=f"{key} {model}")[0]
                if q == qs[0]:
                    key_handles.append(h)
                f = blk.fits[q][model]
                if _finite(f.a.value) and _finite(f.b.value):
                    fit_handles.append(_finite_size_fit_line(ax, f, x, "-" if model == "exact" else ":", col,
                                                             f"{key} {model}: {_fit_terms(f)}"))
                    e = ax.errorbar([0], [f.a.value], yerr=[[f.a.value - f.a.lo], [f.a.hi - f.a.value]]
                                    if _finite(f.a.lo) else None, fmt=mk, color=col, ms=6, capsize=3,
                                    label=f"{key} {model}: fit's a at 1/n = 0")
                    if q == qs[0]:
                        key_handles.append(e)
            th = blk.theory_d_inf.get(q)
            if _finite(th):
                h = ax.plot([0], [th], "*", color=col, ms=12, mec="k", label=f"{key}: d → ∞ theory")[0]
                if q == qs[0]:
                    key_handles.append(h)
        ax.set_xlabel("1/n")
        ax.set_title(LABELS[q])
        if q.startswith("tau") or q.startswith("lambda"):
            ax.set_yscale("log")
        if fit_handles:
            ax.legend(handles=fit_handles, fontsize=5, title="fits a + b·(terms)", title_fontsize=5)
    spare = axes.ravel()[-1]
    spare.axis("off")
    if key_handles:
        spare.legend(handles=key_handles, fontsize=6, loc="center", ncol=2 if len(key_handles) > 12 else 1,
                     title="points (o exact, x GE), a (with interval), ★")
    fig.suptitle("Finite-size ladder at fixed ψ's: exact model (o, —), Gaussian-equivalent control (x, ⋯), "
                 "fits a + b n^-γ (+ c n^-2γ) extrapolated to 1/n = 0 (with intervals), d → ∞ theory (★)")
    fig.tight_layout()
    return fig


def _spectrum(P, S, R):
    plt = pyplot()
    Sp = P.spectrum
    fig, axes = plt.subplots(2, len(Sp.psi_ns), figsize=(5.5 * len(Sp.psi_ns), 8), squeeze=False)
    for j, pn in enumerate(Sp.psi_ns):
        p = int(round(Sp.psi_p * Sp.d))
        for i, data in enumerate(("isotropic", "spectrum")):
            ax = axes[i, j]
            e = S.entry(data, pn)
            r, dens, dens_d = R[e.study], R[e.density], R[e.density_d]
            lam = r.simulation.spectrum.nodes
            lam = lam[lam > 0]
            bins = np.geomspace(lam.min() * 0.9, lam.max() * 1.1, 90)
            cnt, be = np.histogram(lam, bins=bins)
            ax.stairs(cnt / (p * np.diff(be)), be, fill=True, color="C0", alpha=0.45, label=f"exact U, d={Sp.d}")
            ok = dens.rho > 1e-6
            ax.plot(dens.lambdas[ok], dens.rho[ok], "k.", ms=1.5, label="Theorem 3.1 (d → ∞)")
            ax.plot(dens_d.lambdas, np.where(dens_d.rho > 1e-6, dens_d.rho, np.nan), color="C1", lw=0.8,
                    label=f"finite-d correction (d={Sp.d})")
            ax.axvline(dens.atom_location, color="C3", ls="--", lw=1, label=f"atom at $s_t^2$ (w={dens.atom_weight:.3f})")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_ylim(1e-4, None)
            lab = "isotropic" if data == "isotropic" else r"$\rho_\Sigma=\frac{1}{2}\delta_{0.5}+\frac{1}{2}\delta_{1.5}$"
            ax.set_title(rf"{lab}, $\psi_p$={Sp.psi_p:g}, $\psi_n$={pn:g}, t={Sp.t:g}")
            ax.set_xlabel(r"$\lambda$")
            ax.set_ylabel(r"$\rho(\lambda)$")
            ax.legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    return fig


def _learning_curves(P, S, R):
    plt = pyplot()
    L = P.learning_curves
    fig, axs = plt.subplots(2, 2, figsize=(11, 7), gridspec_kw={"height_ratios": [1.6, 1]})
    (a1, a2), (b1, b2) = axs
    for i, (pn, label) in enumerate(S.shown.items()):
        r = R[label]
        c, th, col = r.simulation.curves, r.theory_d_inf, f"C{i}"
        a1.loglog(c.tau, c.score_error, color=col, label=rf"$\psi_n$={pn:g}")
        a1.loglog(th.curves.tau, th.curves.score_error, color=col, ls=":", lw=1)
        a2.semilogx(c.tau, c.train_loss, color=col, label=rf"train $\psi_n$={pn:g}")
        a2.semilogx(c.tau, c.test_loss, color=col, ls="--")
        a2.semilogx(th.curves.tau, r.theory.curves.train_loss, color="k", ls=":", lw=0.8)
        a2.semilogx(th.curves.tau, th.curves.test_loss, color="k", ls="-.", lw=0.8)
        tm_s, tm_t = r.simulation.timescales.tau_mem, th.timescales.tau_mem
        b1.semilogx(c.tau / pn, c.gen_gap / c.gen_gap[-1], color=col)
        b1.semilogx(th.curves.tau / pn, th.curves.gen_gap / th.curves.gen_gap[-1], color=col, ls=":", lw=1)
        if _finite(tm_s):
            b2.semilogx(c.tau / tm_s, c.gen_gap / c.gen_gap[-1], color=col)
        if _finite(tm_t):
            b2.semilogx(th.curves.tau / tm_t, th.curves.gen_gap / th.curves.gen_gap[-1], color=col, ls=":", lw=1)
    a1.set_ylabel(r"$E_{score}$ (— exact, ⋯ theory)")
    a2.set_ylabel("train (—) / test (--) loss; theory black")
    a2.set_ylim(0, 1.8)
    for a in (a1, a2):
        a.set_xlabel(r"training time $\tau$")
    b1.set_xlabel(r"$\tau/\psi_n$ (the paper's rescaling: $\tau_{mem} \propto n$)")
    b2.set_xlabel(r"$\tau/\tau_{mem}$ (each curve's own; zero spread at ½ by construction)")
    col = S.collapse
    for b, k in ((b1, "psi_n"), (b2, "own_tau_mem")):
        b.set_ylabel(r"$L_{gen}/L_{gen}(\tau_{max})$ (— exact, ⋯ theory)")
        b.set_title(f"spread (decades) at 90 % of the final gap: simulation (median over seeds) "
                    f"{np.nanmedian(col.simulation[k][0.9]):.2f}, theory {col.theory[k][0.9]:.2f}; "
                    f"unrescaled {np.nanmedian(col.simulation['none'][0.9]):.2f} / {col.theory['none'][0.9]:.2f}",
                    fontsize=7)
    a1.legend(ncol=2)
    fig.suptitle(rf"RF score, tanh, $\psi_p$={L.psi_p:g}, t={L.t:g}, d={L.d} (seed {S.seeds[0]})")
    fig.tight_layout()
    return fig


def _fit_line(ax, fit, x, style, color, label):
    if fit is None or not _finite(fit.slope.value):
        return
    xx = np.geomspace(min(x), max(x), 50)
    ci = f" [{fit.slope.lo:.2f}, {fit.slope.hi:.2f}]" if _finite(fit.slope.lo) else ""
    ax.loglog(xx, fit.prefactor * xx**fit.slope.value, style, color=color, lw=1,
              label=f"{label}: slope {fit.slope.value:.2f}{ci}")


def _min_score(P, S, R):
    plt = pyplot()
    M = P.min_score
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    pns = list(S.per_psi_n)
    est = [S.per_psi_n[k].simulation for k in pns]
    sd = [S.per_psi_n[k].sd for k in pns]
    ax.errorbar(pns, [e.value for e in est], yerr=[3 * s if _finite(s) else 0 for s in sd], fmt="o", color="C0",
                capsize=3, label=f"simulation, mean ± 3σ over {len(M.seeds)} seeds (d={M.d})")
    if S.points_theory:
        ax.loglog(*zip(*S.points_theory), "s", mfc="none", color="C1", label="theory (d → ∞, same rule)")
    _fit_line(ax, S.fit_simulation, pns, "-", "C0", "fit, simulation")
    _fit_line(ax, S.fit_theory, pns, "--", "C1", "fit, theory")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\psi_n = n/d$")
    ax.set_ylabel(r"$\min_\tau E_{score}$")
    ax.set_title(rf"$\psi_p$={M.psi_p:g}, t={M.t:g}; paper: $\psi_n^{{-0.59}}$")
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def _sigma_x(P, S, R):
    plt = pyplot()
    Sx = P.sigma_x
    fig, axes = plt.subplots(1, len(Sx.sigma_x), figsize=(5.5 * len(Sx.sigma_x), 4), squeeze=False)
    for ax, sx in zip(axes[0], Sx.sigma_x):
        for i, (pn, label) in enumerate(S.shown[sx].items()):
            r = R[label]
            c = r.simulation.curves
            ax.semilogx(c.tau, c.train_loss, color=f"C{i}", label=rf"$\psi_n$={pn:g}")
            ax.semilogx(c.tau, c.test_loss, color=f"C{i}", ls="--")
            if _finite(r.simulation.timescales.tau_mem):
                ax.axvline(r.simulation.timescales.tau_mem, color=f"C{i}", lw=0.6)
        fits = S.per_sigma_x[sx]
        ax.set_title(rf"$\sigma_x$={sx:g}: $\tau_{{mem}}\propto\psi_n^{{a}}$, a = "
                     f"{fits.simulation.slope.value:.2f} (sim), {fits.theory.slope.value:.2f} (theory)")
        ax.set_xlabel(r"$\tau$")
        ax.set_ylabel("train (—) / test (--) loss")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _adam(P, S, R):
    plt = pyplot()
    A = P.adam
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (n, label) in enumerate(S.shown.items()):
        r = R[label]
        for a, x in ((a1, r.step), (a2, r.step / n)):
            a.semilogx(x, r.curves.train_loss, color=f"C{i}", label=f"n={n}")
            a.semilogx(x, r.curves.test_loss, color=f"C{i}", ls="--")
    f = S.fit_steps_vs_n
    a1.set_xlabel("Adam steps")
    a2.set_xlabel("steps / n")
    a2.set_title(f"steps to L_gen = {A.gap_level:g}: ∝ n^a, a = {f.slope.value:.2f} [{f.slope.lo:.2f}, {f.slope.hi:.2f}]")
    for a in (a1, a2):
        a.set_ylabel("train (—) / test (--) loss")
        a.legend(fontsize=7)
    fig.suptitle(f"Adam (lr {A.eta:g}) on the exact loss: d={A.d}, p={int(A.psi_p * A.d)}, t={A.t:g}")
    fig.tight_layout()
    return fig


def _scaling(P, S, R):
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, var in zip(axes, ("n", "p")):
        blk = getattr(S, f"vs_{var}")
        for k, (marker, col, ls, name) in SCALING_SERIES.items():
            pts = blk.points[k]
            if pts:
                x, y = zip(*pts)
                ax.loglog(x, y, marker, color=col, ms=4, mfc="none" if "theory" in k else col, label=name)
                _fit_line(ax, getattr(blk, k), x, ls, col, f"fit, {name}")
        ax.set_xlabel(var)
        ax.set_ylabel(r"$\tau$ (curves rule, both sides)")
        ax.legend(fontsize=6)
    Sc = P.scaling
    fig.suptitle(f"Timescales vs n at p={Sc.p} and vs p at n={Sc.n_fixed} (d={Sc.d}, t={Sc.t:g}; "
                 f"ψ_p/ψ_n ≥ {S.psi_p_over_psi_n_min:g})")
    fig.tight_layout()
    return fig


def _edges_log(v):
    v = np.log(np.asarray(v, float))
    mid = (v[1:] + v[:-1]) / 2
    return np.exp(np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]]))


def _heatmap(P, S, R):
    plt = pyplot()
    H = P.heatmap
    fig, axes = plt.subplots(1, len(H.taus), figsize=(5.2 * len(H.taus), 4.2), squeeze=False)
    cells = {(c.psi_n, c.psi_p): c for c in S.cells}
    for ax, tau in zip(axes[0], H.taus):
        Z = np.array([[cells[(pn, pp)].gap_at[tau] for pn in H.psi_ns] for pp in H.psi_ps])
        im = ax.pcolormesh(_edges_log(H.psi_ns), _edges_log(H.psi_ps), Z, cmap="magma", vmin=0,
                           vmax=max(1e-3, float(np.nanmax(Z))))
        TM = np.asarray(S.tau_mem_asymptotic)
        ax.contour(S.psi_n, S.psi_p, np.log10(np.where(np.isfinite(TM), TM, 1e30)), levels=[math.log10(tau)],
                   colors="w")
        ax.plot(S.psi_n, S.psi_n, "k--", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(S.psi_n[0], S.psi_n[-1])
        ax.set_ylim(S.psi_p[0], S.psi_p[-1])
        ax.set_xlabel(r"$\psi_n$")
        ax.set_ylabel(r"$\psi_p$")
        ax.set_title(rf"$L_{{gen}}$ at $\tau$={tau:.0e} (white: $\tau_{{mem}}=\tau$, Thm 3.2; dashed: n = p)")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig


def _phase(P, S, R):
    plt = pyplot()
    from matplotlib.colors import ListedColormap
    H = P.heatmap
    taus = P.phase.taus
    cmap = ListedColormap(["#d62728", "#2ca02c", "#1f77b4"])   # memorisation, dynamical, architectural
    fig, axes = plt.subplots(1, len(taus), figsize=(4.3 * len(taus), 4), squeeze=False)
    for ax, tau in zip(axes[0], taus):
        Z = np.array([[S.simulation[tau][(pn, pp)] for pn in H.psi_ns] for pp in H.psi_ps], dtype=float)
        ax.pcolormesh(_edges_log(H.psi_ns), _edges_log(H.psi_ps), Z, cmap=cmap, vmin=-0.5, vmax=2.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"$\psi_n$")
        ax.set_ylabel(r"$\psi_p$")
        ax.set_title(rf"$\tau$={tau:.0e}")
    fig.suptitle(f"red: memorisation, green: dynamical regularisation (τ < τ_mem), blue: architectural (no gap); "
                 f"agreement with the theory's labels {S.agreement:.2f}")
    fig.tight_layout()
    return fig


def _procedure(P, S, R):
    plt = pyplot()
    tr = R[S.training]
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(16, 4.2))
    c, m = tr.curves, tr.mean
    a1.semilogx(c.tau, c.train_loss, "C3", label="fresh-noise GD (the authors' procedure)")
    a1.semilogx(m.tau, m.train_loss, "k--", label="exact mean trajectory (same steps)")
    a1.semilogx(c.tau, c.test_loss, "C1", label="test, fresh-noise GD")
    a1.semilogx(m.tau, m.test_loss, "k:", label="test, mean trajectory")
    a2.semilogx(S.tau, 100 * S.relative_train_excess, "C3",
                label=f"measured (mean over {len(S.noise_seeds)} noise seeds)")
    a3.loglog(c.tau, c.score_error, "C3", label="fresh-noise GD")
    a3.loglog(m.tau, m.score_error, "k--", label="mean trajectory")
    fl = S.floor
    if fl is not None:
        ref = np.interp(fl.tau, m.tau, m.train_loss)
        a2.errorbar(fl.tau, 100 * fl.measured_train_excess / ref,
                    yerr=100 * np.array([fl.measured_train_excess - fl.measured_train_excess_lo,
                                         fl.measured_train_excess_hi - fl.measured_train_excess]) / ref,
                    fmt="none", ecolor="C3", capsize=3, label="measured at the checkpoints (95 % interval)")
        a2.semilogx(fl.tau, 100 * fl.predicted_train_excess / ref, "ko",
                    mfc="none", label="predicted floor (noise covariance along the mean trajectory's history)")
        a3.loglog(fl.tau, np.interp(fl.tau, m.tau, m.score_error) + fl.predicted_score_excess, "ko",
                  mfc="none", label="mean + predicted excess")
    a1.set_ylabel("loss")
    a2.set_ylabel("train-loss excess over the mean trajectory (%)")
    a3.set_ylabel(r"$E_{score}$")
    for a in (a1, a2, a3):
        a.set_xlabel(r"$\tau = k\eta/d^2$")
        a.legend(fontsize=6)
    Rr = P.procedure
    fig.suptitle(f"Fresh-noise GD at lr {Rr.lr_factor:g}·d/Δ_t vs the exact mean trajectory "
                 f"({len(S.noise_seeds)} noise seeds, one drawn in the left and right panels): d={Rr.d}, "
                 f"ψ_p={Rr.psi_p:g}, ψ_n={Rr.psi_n:g}, t={Rr.t:g}, {Rr.steps} steps")
    fig.tight_layout()
    return fig
