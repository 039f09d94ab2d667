"""Figures of the generation study (plotting only: every number comes from a GenerationSummary, docs/theory.md §5)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from rfdiff_analysis.plots import pyplot, save


def _colors(m):
    return pyplot().cm.viridis(np.linspace(0.0, 0.9, m))


def _tau_x(taus):
    """Plot positions: finite τ as is, τ = ∞ one decade beyond the last finite value."""
    x = np.asarray(taus, dtype=float).copy()
    x[~np.isfinite(x)] = x[np.isfinite(x)].max() * 10
    return x


def _n_axis(ax, ns):
    from matplotlib.ticker import NullFormatter
    ax.set_xscale("log")
    ax.set_xticks(list(ns))
    ax.set_xticklabels([str(n) for n in ns])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _tau_axis(ax, taus):
    ax.set_xscale("log")
    ax.axvline(_tau_x(taus)[-1] / 3.3, color="grey", lw=0.5)
    ax.set_xlabel("training time τ (rightmost point: τ = ∞)")


def fmem_quality(s):
    """f_mem (k = 1/3, bootstrap band; dashed: against {±x^ν}), KL of moments and closer-to-train fraction vs τ."""
    plt, st, ns = pyplot(), s.study, [int(n) for n in s.n_values]
    x, cols = _tau_x(s.taus), _colors(len(ns))
    F, Fs = s.fmem.mean(axis=1), s.fmem_sym.mean(axis=1)
    lo, hi = s.fmem_lo.mean(axis=1), s.fmem_hi.mean(axis=1)
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    for i, n in enumerate(ns):
        ax[0].plot(x, F[i, 0], "o-", color=cols[i], ms=3, label=f"n = {n}")
        ax[0].fill_between(x, lo[i, 0], hi[i, 0], color=cols[i], alpha=0.2)
        if s.odd_activation:
            ax[0].plot(x, Fs[i, 0], "--", color=cols[i], lw=1)
        ax[1].plot(x, s.kl[i].mean(0), "o-", color=cols[i], ms=3, label=f"n = {n}")
        ax[2].plot(x, s.closer_train[i].mean(0), "o-", color=cols[i], ms=3)
    if s.odd_activation:
        ax[0].plot([], [], "k--", lw=1, label="against {±x^ν} (odd σ)")
    ax[1].axhline(np.mean(s.ref_pop_kl), color="k", ls=":", label="exact population score")
    ax[2].axhline(0.5, color="k", ls=":")
    for a in ax:
        _tau_axis(a, s.taus)
    ax[1].set_yscale("log")
    ax[0].set_ylabel("f_mem (k = 1/3), 95% bootstrap band")
    ax[1].set_ylabel("KL(N(mean̂, Σ̂) ‖ P_tmin)")
    ax[2].set_ylabel("fraction closer to train than to test")
    ax[0].legend(fontsize=8)
    ax[1].legend(fontsize=8)
    fig.suptitle(f"RF-score generation ({st.activation}), isotropic Gaussian d = {st.d}, p = {st.p} per time, "
                 f"{st.n_times} grid times, {st.samples} samples, {st.seeds} seed(s)")
    return fig


def collapse(s):
    """f_mem vs τ/n, raw and normalised by f_mem(τ = ∞) (against {±x^ν} for an odd σ)."""
    plt, ns = pyplot(), [int(n) for n in s.n_values]
    cols, fin = _colors(len(ns)), np.isfinite(s.taus)
    F = s.fmem.mean(axis=1)
    G = s.fmem_sym.mean(axis=1) if s.odd_activation else F
    fig, ax = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for i, n in enumerate(ns):
        ax[0].plot(s.taus[fin] / n, F[i, 0, fin], "o-", color=cols[i], ms=3, label=f"n = {n}")
        if G[i, 0, -1] > 0:
            ax[1].plot(s.taus[fin] / n, G[i, 0, fin] / G[i, 0, -1], "o-", color=cols[i], ms=3)
    for a in ax:
        a.set_xscale("log")
        a.set_xlabel("τ / n")
    ax[0].set_ylabel("f_mem (k = 1/3)")
    ax[1].set_ylabel("f_mem / f_mem(τ = ∞)" + (" against {±x^ν}" if s.odd_activation else ""))
    ax[0].legend(fontsize=8)
    fig.suptitle("collapse of the memorisation curves under τ/n")
    return fig


def emm(s):
    """EMM_ε(τ), the largest n with E f_mem ≥ 1 − ε (docs/theory.md §5.4)."""
    from matplotlib.ticker import NullFormatter
    plt, ns, x = pyplot(), [int(n) for n in s.n_values], _tau_x(s.taus)
    fig, ax = plt.subplots(figsize=(6.5, 4.2), constrained_layout=True)
    styles = (("0.1", "o-", "EMM_0.1", "EMM_0.1"), ("0.5", "s--", "EMM_0.5", "EMM_0.5"),
              ("sym_0.1", "^-", "EMM_0.1 against {±x^ν}", "EMM_0.1 ±x"),
              ("sym_0.5", "v--", "EMM_0.5 against {±x^ν}", "EMM_0.5 ±x"))
    for key, st, lab, _ in styles:
        if key in s.emm:
            e = np.asarray(s.emm[key], dtype=float)
            ax.plot(x, np.where(e > 0, e, np.nan), st, label=lab)
    empty = [short for key, _, _, short in styles if key in s.emm and not np.any(np.asarray(s.emm[key]) > 0)]
    if empty:
        ax.text(0.02, 0.95, "no n qualifies at any τ: " + ", ".join(empty), transform=ax.transAxes, fontsize=8,
                va="top")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_yticks(ns)
    ax.set_yticklabels([str(n) for n in ns])
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(min(ns) / 1.5, max(ns) * 3)
    ax.set_xlim(x[0] / 2, x[-1] * 2)
    ax.set_xlabel("training time τ (rightmost: ∞)")
    ax.set_ylabel("largest n with E f_mem ≥ 1 − ε")
    ax.set_title(f"effective model memorisation, n ∈ {ns} (absent: no n qualifies)", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def early_stopping(s):
    """τ_stop = c·n against the best-in-hindsight τ*(n), and KL and f_mem at both (docs/theory.md §5.5)."""
    plt, ns, es = pyplot(), [int(n) for n in s.n_values], s.early_stopping
    fig, ax = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    rows = ((es.tau_best, es.tau_stop, "τ"), (es.kl_best, es.kl_stop, "KL (Gaussian moments)"),
            (es.fmem_best, es.fmem_stop, "f_mem (k = 1/3)"))
    for a, (best, stop, ylabel) in zip(ax, rows):
        a.plot(ns, best, "o-", label="best in hindsight τ*(n)" if ylabel == "τ" else "at τ*(n)")
        a.plot(ns, stop, "s--", label=f"τ_stop = c·n, c = {es.c:.3g}" if ylabel == "τ" else "at τ_stop = c·n")
        a.set_ylabel(ylabel)
        if ylabel != "f_mem (k = 1/3)":
            a.set_yscale("log")
        _n_axis(a, ns)
        a.set_xlabel("n")
        a.legend(fontsize=8)
    fig.suptitle(f"early stopping τ_stop = c·n calibrated at n = {es.n0} "
                 f"(τ*: lowest KL among grid τ with f_mem ≤ {es.f_max:g})")
    return fig


def mixture(s):
    """Two-class mixture: f_mem, KL of moments and class balance vs τ."""
    plt, st, Mx = pyplot(), s.study, s.mixture
    x, mc = _tau_x(s.taus), _colors(len(Mx.n))
    fig, ax = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    for i, n in enumerate(Mx.n):
        ax[0].plot(x, Mx.fmem[i, 0], "o-", color=mc[i], ms=3, label=f"n = {n}")
        ax[0].fill_between(x, Mx.fmem_lo[i, 0], Mx.fmem_hi[i, 0], color=mc[i], alpha=0.2)
        if s.odd_activation:
            ax[0].plot(x, Mx.fmem_sym[i, 0], "--", color=mc[i], lw=1)
        ax[1].plot(x, Mx.kl[i], "o-", color=mc[i], ms=3)
        ax[2].plot(x, Mx.balance[i], "o-", color=mc[i], ms=3)
    if s.odd_activation:
        ax[0].plot([], [], "k--", lw=1, label="against {±x^ν}")
    ax[1].axhline(np.mean(Mx.ref_pop_kl), color="k", ls=":", label="exact population score")
    ax[2].axhline(np.mean(Mx.ref_pop_balance), color="k", ls=":", label="exact population score")
    for a in ax:
        _tau_axis(a, s.taus)
    ax[1].set_yscale("log")
    ax[0].set_ylabel("f_mem (k = 1/3)")
    ax[1].set_ylabel("KL of moments (vs mixture mean, cov)")
    ax[2].set_ylabel("|fraction in the +μ class − ½|")
    ax[0].legend(fontsize=8)
    ax[1].legend(fontsize=8)
    fig.suptitle(f"two-class mixture ½N(μ, I) + ½N(−μ, I), ‖μ‖ = {st.mu_norm:g}, d = {st.d}, p = {st.p}, "
                 f"{st.activation}")
    return fig


def tau_mem(s):
    """τ_mem vs n at a few grid times: from the samples (f_mem), the losses (gen. gap) and the theory (§6.2)."""
    plt, st, ns, gt = pyplot(), s.study, np.asarray(s.n_values), s.grid_times
    fig, ax = plt.subplots(figsize=(10, 5.2), constrained_layout=True)
    sel = sorted({0} | {int(np.argmin(abs(np.log(gt / t)))) for t in (0.1, 0.3, 1.0)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # nan-means of all-NaN rows (τ_mem not reached)
        for c_, j in zip(_colors(len(sel)), sel):
            ax.plot(ns, np.nanmean(s.loss_tau_mem[:, :, j], axis=1), "-", color=c_,
                    label=f"loss: gen. gap reaches ½ final, t = {gt[j]:.2g}")
            ax.plot(ns, s.theory_tau_mem[:, j], ":", color=c_, label=f"theory ψ_p/(Δ_t λ_mem), t = {gt[j]:.2g}")
        g = s.gen_tau_mem
        gm = np.nanmean(g, axis=1)
        ax.errorbar(ns, gm, yerr=np.nanstd(g, axis=1) if g.shape[1] > 1 else None,
                    fmt="ko", ms=7, capsize=3, label="samples: f_mem reaches ½ f_mem(∞)")
        if np.any(np.isfinite(gm)):
            ax.plot(ns, ns * np.nanmedian(gm / ns), "k--", lw=0.8, label="∝ n")
    ax.set_yscale("log")
    _n_axis(ax, ns)
    ax.set_xlabel("n (training-set size)")
    ax.set_ylabel("τ_mem")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.set_title(f"memorisation time of the samples vs of the losses (d = {st.d}, p = {st.p}, {st.activation})",
                 fontsize=10)
    return fig


def activation(s):
    """f_mem of the odd σ (against X and {±x^ν}) and of the non-odd comparison σ vs τ."""
    plt, st, C = pyplot(), s.study, s.compare
    x, ns = _tau_x(s.taus), [int(n) for n in s.n_values]
    F, Fs = s.fmem.mean(axis=1), s.fmem_sym.mean(axis=1)
    fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
    for i, n in enumerate(int(n) for n in C.n):
        ls, j = ["-", "--"][i % 2], ns.index(n)
        ax.plot(x, F[j, 0], "o" + ls, color="C0", ms=3, label=f"{st.activation}, n = {n}")
        ax.plot(x, Fs[j, 0], "^" + ls, color="C1", ms=3, label=f"{st.activation} against {{±x^ν}}, n = {n}")
        ax.plot(x, C.fmem[i, 0], "s" + ls, color="C2", ms=3, label=f"{C.activation}, n = {n}")
    _tau_axis(ax, s.taus)
    ax.set_ylabel("f_mem (k = 1/3)")
    ax.set_title(f"an odd σ gives an odd score: it memorises {{±x^ν}} (d = {st.d}, p = {st.p})", fontsize=10)
    ax.legend(fontsize=7)
    return fig


def figures(s, figdir, suffix: str = "") -> list[Path]:
    """Every figure of the study as ``<figdir>/generation_<name><suffix>.png/.pdf``; returns the files."""
    draw = [("fmem_quality", fmem_quality), ("collapse", collapse), ("emm", emm), ("early_stopping", early_stopping),
            ("tau_mem", tau_mem)]
    if s.mixture is not None:
        draw.insert(4, ("mixture", mixture))
    if s.compare is not None:
        draw.append(("activation", activation))
    files = []
    for name, fn in draw:
        files += save(fn(s), Path(figdir) / f"generation_{name}{suffix}")
    return files
