"""Figures drawn from typed results (plotting only: every number comes from the library)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend, with the project's small fonts."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"font.size": 9, "axes.titlesize": 9, "legend.fontsize": 7})
    return plt


def save(fig, stem, tight: bool = True, overwrite: bool = True) -> list[Path]:
    """``stem.png`` and ``stem.pdf`` as one commit (both written, then published; rfdiff.io.commit); the figure is closed.

    ``overwrite=False`` raises ``FileExistsError`` instead of replacing an existing figure."""
    from rfdiff import io
    stem = Path(stem)
    kw = {"dpi": 150, "bbox_inches": "tight" if tight else None}
    try:
        return io.commit({stem.with_name(f"{stem.name}.{ext}"): (lambda fh, ext=ext: fig.savefig(fh, format=ext, **kw))
                          for ext in ("png", "pdf")}, overwrite)
    finally:
        pyplot().close(fig)


def _vline(ax, x, color, ls, label):
    if x is not None and np.isfinite(x):
        ax.axvline(x, color=color, ls=ls, lw=1.2, label=label)


def _sparse_minor_ticks(fig):
    """Minor ticks of log axes at 2 and 5 only (matplotlib's default 2–9 makes a third of the figure's draw time)."""
    from matplotlib.ticker import LogLocator
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log":
                axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))


def main_job_figure(res):
    """Train/test loss, score error and distance to the empirical score vs τ (simulation and theory,
    τ_gen and τ_mem of both marked), and the spectrum of U with the theory's memorisation edge.

    Labels are plain Unicode (no mathtext: its parser costs 0.4 s on the main job's first figure)."""
    plt = pyplot()
    cfg, sim, th = res.config, res.simulation, res.theory
    c, tau = sim.curves, sim.curves.tau
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    ax.semilogx(tau, c.train_loss, color="C0", label="train (exact)")
    ax.semilogx(tau, c.test_loss, color="C1", label="test (exact)")
    top = float(np.max(c.test_loss))
    if th is not None:
        ax.semilogx(tau, th.curves.train_loss, "k--", lw=1, label="train (theory)")
        if th.curves.test_loss is not None:
            ax.semilogx(tau, th.curves.test_loss, "r:", lw=1.2, label="test (theory)")
            top = max(top, float(np.max(th.curves.test_loss)))
    ax.set_ylim(0, max(1.2, min(3.0, 1.05 * top)))
    ax.set_ylabel("denoising loss")
    ax = axes[1]
    ax.loglog(tau, c.score_error, color="C2", label="E_score (exact)")
    if c.emp_distance is not None:
        ax.loglog(tau, c.emp_distance, color="C3", label="distance to empirical score")
    if th is not None and th.curves.score_error is not None:
        ax.loglog(tau, th.curves.score_error, "k:", lw=1.2, label="E_score (theory)")
    for a in axes[:2]:
        a.set_xlabel("training time τ")
        for side, ls, who in ((sim, "-", "sim"), (th, ":", "theory")):
            if side is not None:
                _vline(a, side.timescales.tau_gen, "gray", ls, f"τ_gen {who} = {side.timescales.tau_gen:.3g}")
                _vline(a, side.timescales.tau_mem, "purple", ls, f"τ_mem {who} = {side.timescales.tau_mem:.3g}")
        a.legend(fontsize=7)
    ax = axes[2]
    sp = sim.spectrum
    if sp is not None:
        keep = sp.nodes > 0
        lam, w = sp.nodes[keep], sp.weights[keep]
        bins = np.logspace(np.log10(lam.min()) - 0.05, np.log10(lam.max()) + 0.05, 120)
        ax.hist(lam, bins=bins, weights=w * cfg.p, color="C0", alpha=0.7, label=f"eigenvalues of U ({sp.method})")
    else:
        ax.text(0.5, 0.5, "spectrum not computed", transform=ax.transAxes, ha="center")
    if th is not None and res.prediction is not None:
        pred = res.prediction
        where = f"finite d = {pred.d}" if pred.d is not None else "d → ∞"
        for i, (lo, hi) in enumerate(pred.edges):
            ax.axvspan(lo, hi, color="orange", alpha=0.15, label=f"theory bulks ({where})" if i == 0 else None)
        _vline(ax, th.timescales.lambda_mem, "purple", ":", "theory λ_mem")
    _vline(ax, sim.timescales.lambda_mem, "purple", "-", "exact λ_mem")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("λ")
    ax.set_ylabel("count")
    ax.legend(fontsize=7)
    _sparse_minor_ticks(fig)
    fig.suptitle(f"RF score: d={cfg.d}, p={cfg.p}, n={cfg.n}, t={cfg.t:g}, {cfg.activation}, {cfg.data.kind} "
                 f"(ψ_p={cfg.psi_p:g}, ψ_n={cfg.psi_n:g})")
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.12, top=0.9, wspace=0.22)   # fixed: tight_layout draws twice
    return fig
