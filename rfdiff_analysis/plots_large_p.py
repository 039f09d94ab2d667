"""Figure of the large-p study (rfdiff.pipelines.large_p): plotting only, every number comes from its summary."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .plots import pyplot, save


def large_p_figure(summary):
    """Per ψ_p: one panel per quantity (τ_mem, τ_gen), the local exponent of each ψ_n pair against 1/d, and a third
    panel, the exact model's excess over the theory's τ_mem exponent against n (:func:`_approach_panel`).

    Points: seed means with 95 % intervals (exact model: filled, GE control: open); lines: the fitted
    ``a + b d^-γ`` of the exact model, extended to 1/d = 0; stars at 1/d = 0: the d → ∞ theory's local
    exponent (the same extraction rule on its curves); the grey band: ± the tolerance around it.
    """
    plt = pyplot()
    S = summary
    pps = sorted({x.psi_p for x in S.local_exponents})
    qs = ("tau_mem", "tau_gen")
    fig, axes = plt.subplots(len(pps), 3, figsize=(16, 4.2 * len(pps)), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, pp in enumerate(pps):
        for j, q in enumerate(qs):
            ax = axes[i][j]
            pairs = sorted({(x.psi_n_lo, x.psi_n_hi) for x in S.local_exponents if x.psi_p == pp and x.quantity == q})
            xmax = 0.0
            for k, (lo, hi) in enumerate(pairs):
                c = colors[k % len(colors)]
                for model, mk, fill in (("exact", "o", c), ("ge", "s", "none")):
                    sel = sorted((x for x in S.local_exponents if (x.psi_p, x.quantity, x.model, x.psi_n_lo) ==
                                  (pp, q, model, lo)), key=lambda x: x.d)
                    if not sel:
                        continue
                    inv = np.array([1.0 / x.d for x in sel])
                    xmax = max(xmax, float(inv.max()))
                    y = np.array([x.value.value for x in sel])
                    err = np.array([[x.value.value - x.value.lo, x.value.hi - x.value.value] for x in sel]).T
                    err = np.where(np.isfinite(err), err, 0.0)
                    shift = (0.015 if model == "ge" else 0.0) * inv
                    ax.errorbar(inv + shift, y, yerr=err, fmt=mk, color=c, mfc=fill, ms=5, capsize=2,
                                label=f"{'exact' if model == 'exact' else 'GE control'}, ψ_n {lo:g}→{hi:g}")
                    if model == "exact":
                        ex = S.extrapolation(model, pp, q, lo)
                        f = ex.fit
                        if math.isfinite(f.a.value) and math.isfinite(f.b.value):
                            xs = np.linspace(0.0, float(inv.max()), 100)
                            with np.errstate(divide="ignore", invalid="ignore"):
                                dd = np.where(xs > 0, 1.0 / np.maximum(xs, 1e-300), np.inf)
                                yy = f.predict(dd)
                            ax.plot(xs, yy, "-", color=c, lw=1, alpha=0.8)
                            if math.isfinite(f.a.lo):
                                ax.errorbar([0.0], [f.a.value], yerr=[[f.a.value - f.a.lo], [f.a.hi - f.a.value]],
                                            fmt="D", color=c, ms=4, capsize=3)
                        ax.plot([0.0], [ex.theory], "*", color=c, ms=12, mec="k", mew=0.6)
                        ax.axhspan(ex.theory - ex.tolerance, ex.theory + ex.tolerance, color=c, alpha=0.08)
            name = "τ_mem" if q == "tau_mem" else "τ_gen"
            ax.set_xlim(-0.01 * max(xmax, 0.05), 1.08 * max(xmax, 0.05))
            ax.set_xlabel("1/d  (n = ψ_n d, p = ψ_p d)")
            ax.set_ylabel(f"local exponent of {name} in n")
            ax.set_title(f"{name}, ψ_p = {pp:g}\n(★ theory d → ∞, ◆ fit at d → ∞, band ± tolerance)", fontsize=9)
            ax.legend(fontsize=6, ncol=2)
        _approach_panel(axes[i][2], S, pp, colors)
    return fig


def _approach_panel(ax, S, pp: float, colors) -> None:
    """The exact model's excess over the theory's τ_mem exponent against n of each pair's smaller ψ_n (log-log),
    with the tolerance: the report's "What sets the approach" (:func:`rfdiff.pipelines.large_p.approach`). Grey: the
    collapse in n over every rung (:func:`rfdiff.pipelines.large_p.collapse_forecast`, carried on to twice the
    largest n) and, open, each point's forecast with its own rung left out."""
    from rfdiff.pipelines.large_p import approach, collapse_forecast
    rows = [x for x in approach(S) if x.psi_p == pp]
    for k, a in enumerate(rows):
        ok = [i for i, e in enumerate(a.excess) if e.value > 0]
        if not ok:
            continue
        ns = np.array([a.ns[i] for i in ok])
        e = [a.excess[i] for i in ok]
        y = np.array([x.value for x in e])
        lo = np.array([x.lo if math.isfinite(x.lo) and x.lo > 0 else x.value for x in e])
        hi = np.array([x.hi if math.isfinite(x.hi) else x.value for x in e])
        ax.errorbar(ns, y, yerr=[y - lo, hi - y], fmt="o-", color=colors[k % len(colors)], ms=5, capsize=2, lw=1,
                    label=f"ψ_n {a.psi_n_lo:g}→{a.psi_n_hi:g} (d = {', '.join(str(a.ds[i]) for i in ok)})")
        held = [collapse_forecast(S, pp, a.ns[i], exclude_d=a.ds[i]) for i in ok]
        fine = [j for j, f in enumerate(held) if f.value > 0]
        if fine:
            ax.plot(ns[fine] * 1.06, [held[j].value for j in fine], "o", mfc="none", color=colors[k % len(colors)],
                    ms=5, alpha=0.7, label="its forecast, rung left out" if k == len(rows) - 1 else None)
    every = sorted({n for a in rows for n in a.ns})
    if len(every) >= 2:
        grid = np.geomspace(every[0], 2 * every[-1], 60)
        line = np.array([collapse_forecast(S, pp, n).value for n in grid])
        ax.plot(grid, line, "-", color="gray", lw=1, alpha=0.7, label="collapse in n (all rungs)")
    ax.axhline(S.tolerance, color="gray", ls="--", lw=1, label=f"tolerance {S.tolerance:g}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("n = ψ_n d of the pair's smaller ψ_n")
    ax.set_ylabel("exact local exponent − theory's (τ_mem)")
    ax.set_title(f"What sets the approach, ψ_p = {pp:g}:\nthe excess over the theory's exponent against n", fontsize=9)
    ax.legend(fontsize=6)


def draw(summary, figdir, name: str = "large_p", overwrite: bool = True) -> list[Path]:
    """``<figdir>/<name>.png`` and ``.pdf``."""
    return save(large_p_figure(summary), Path(figdir) / name, overwrite=overwrite)
