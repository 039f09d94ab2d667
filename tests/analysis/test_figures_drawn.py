"""The figures draw what the fits say: fit curves through the fit's own predictions, legend colours from the
markers' mapping, every drawn element in the legend (Agg backend, synthetic summaries, no sweep)."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from rfdiff.pipelines import paper
from rfdiff.stats import Estimate, FiniteSizeFit, fit_finite_size, fit_power_law
from rfdiff_analysis import plots, plots_paper


def _rgb(c):
    from matplotlib.colors import to_rgba
    return tuple(round(v, 6) for v in to_rgba(c)[:3])


def _drawn_curves(ax, min_points=10):
    """The connected lines of ``ax`` with at least ``min_points`` vertices (fit curves, not markers or error bars)."""
    return [ln for ln in ax.lines if ln.get_linestyle() not in ("None", "", " ") and len(ln.get_xdata()) >= min_points]


# ---------------------------------------------------------------- FiniteSizeFit.predict

@settings(max_examples=30, deadline=None)
@given(a=st.floats(-5, 5), b=st.floats(-5, 5), c=st.floats(-5, 5), gamma=st.sampled_from([0.5, 1.0]),
       second=st.booleans(), n=st.floats(1.0, 1e6))
def test_predict_is_the_fitted_model(a, b, c, gamma, second, n):
    f = FiniteSizeFit(Estimate(a), Estimate(b), Estimate(c) if second else None, (1.0, 1e6), 5, 0.0, math.nan,
                      gamma, 2 * gamma if second else None)
    want = a + b * n ** -gamma + (c * n ** (-2 * gamma) if second else 0.0)
    assert f.predict(n) == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert float(f.predict(np.inf)) == a
    assert f.predict(np.array([n, 2 * n])).shape == (2,)


def test_predict_rejects_non_positive_n():
    f = fit_finite_size([10, 20, 40], [1.1, 1.05, 1.025])
    with pytest.raises(ValueError, match="n must be positive"):
        f.predict([0.0, 10.0])


# ---------------------------------------------------------------- finite_size_scaling

NS = np.array([16, 24, 32, 48, 64, 96, 128, 192, 256], float)


def _ladder_points(n, y):
    return tuple(paper.LadderPoint(int(k), 8, s, {q: float(v) for q in paper.LADDER_QUANTITIES})
                 for s, (k, v) in enumerate(zip(n, y)))


def _ladder_summary():
    """Block 0: exact ∝ 2 + 3 n^-½ − 4 n^-1 (γ = ½ with a second term), GE ∝ 1.5 + 6/n (γ = 1);
    block 1: exact ∝ 1 + 5/n (γ = 1)."""
    rng = np.random.default_rng(0)
    n = np.repeat(NS, 2)
    y_half = 2 + 3 * n ** -0.5 - 4 / n + 1e-5 * rng.standard_normal(n.size)
    y_one = 1.5 + 6 / n + 1e-5 * rng.standard_normal(n.size)
    y_one_b = 1.0 + 5 / n + 1e-5 * rng.standard_normal(n.size)
    blocks = []
    for t, data in ((0.1, {"exact": y_half, "ge": y_one}), (0.01, {"exact": y_one_b})):
        points = {m: _ladder_points(n, data[m]) if m in data else () for m in ("exact", "ge")}
        fits = {q: {m: fit_finite_size(n, data[m], exponents=(1.0, 0.5)) if m in data else fit_finite_size([], [])
                    for m in ("exact", "ge")} for q in paper.LADDER_QUANTITIES}
        blocks.append(paper.LadderBlock(t, 32.0, 4.0, points, fits, {q: 2.0 for q in paper.LADDER_QUANTITIES}, {}))
    return paper.LadderSummary(tuple(blocks))


def test_finite_size_fit_curves_pass_through_the_fits_predictions():
    """Each fit drawn in every panel is the fitted model (its γ, its second term) at the data's n, and every drawn
    curve is one of the fits."""
    S = _ladder_summary()
    f_half = S.blocks[0].fits["tau_mem"]["exact"]
    assert f_half.gamma == 0.5 and f_half.c is not None and f_half.gamma2 == 1.0     # the case the old drawing missed
    assert S.blocks[1].fits["tau_mem"]["exact"].gamma == 1.0
    fig = plots_paper.make_figure("finite_size_scaling", None, S, None)
    try:
        axes = fig.axes
        for q, ax in zip(paper.LADDER_QUANTITIES, axes):
            curves = _drawn_curves(ax)
            fits = [(blk.fits[q][m], np.array([pt.n for pt in blk.points[m]], float))
                    for blk in S.blocks for m in blk.points if blk.points[m]]
            assert len(curves) == len(fits), q
            unmatched = list(curves)
            for fit, n in fits:
                want = fit.predict(n)
                hit = [ln for ln in unmatched
                       if np.allclose(np.interp(1.0 / n, *_sorted_xy(ln)), want, rtol=1e-9, atol=1e-12)]
                assert hit, (q, fit.gamma, fit.gamma2)
                unmatched.remove(hit[0])
                x0, y0 = _sorted_xy(hit[0])
                assert x0[0] == 0.0 and y0[0] == pytest.approx(fit.a.value, rel=1e-12)   # 1/n = 0 is the extrapolation
    finally:
        plots.pyplot().close(fig)


def _sorted_xy(ln):
    x, y = np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float)
    o = np.argsort(x)
    return x[o], y[o]


# ---------------------------------------------------------------- scaling_timescales

def _scaling_fits(x):
    pts = {"tau_mem_sim": [(v, 10.0 * v) for v in x], "tau_mem_theory": [(v, 13.0 * v ** 0.9) for v in x],
           "tau_gen_sim": [(v, 3.0 * v ** 0.1) for v in x], "tau_gen_theory": [(v, 4.0 * v ** 0.05) for v in x]}
    fits = {k: fit_power_law(*zip(*p)) for k, p in pts.items()}
    return paper.ScalingFits(fits["tau_mem_sim"], fits["tau_gen_sim"], fits["tau_mem_theory"], fits["tau_gen_theory"],
                             pts)


def _markers(ax):
    return [ln for ln in ax.lines if ln.get_linestyle() in ("None", "", " ")]


def _markers_under(line, markers):
    """The marker set through whose points the fit ``line`` passes (log–log interpolation)."""
    x, y = _sorted_xy(line)
    out = []
    for mk in markers:
        mx, my = np.asarray(mk.get_xdata(), float), np.asarray(mk.get_ydata(), float)
        if np.allclose(np.exp(np.interp(np.log(mx), np.log(x), np.log(y))), my, rtol=1e-6):
            out.append(mk)
    return out


def test_scaling_fit_lines_and_legend_take_the_markers_colours():
    S = paper.ScalingSummary(_scaling_fits([32.0, 64.0, 128.0, 256.0]), _scaling_fits([256.0, 512.0, 1024.0]),
                             4.0, 32, 1024)
    P = SimpleNamespace(scaling=SimpleNamespace(p=1024, n_fixed=64, d=32, t=0.1))
    fig = plots_paper.make_figure("scaling", P, S, None)
    try:
        for ax in fig.axes:
            markers = _markers(ax)
            assert len(markers) == 4
            series_of = {}
            for ln in _drawn_curves(ax, min_points=2):
                under = _markers_under(ln, markers)
                assert len(under) == 1
                assert _rgb(ln.get_color()) == _rgb(under[0].get_color()), ln.get_label()
                series_of[ln.get_label()] = under[0]
            for mk in markers:
                series_of[mk.get_label()] = mk
            leg = ax.get_legend()
            assert leg is not None
            for handle, text in zip(leg.legend_handles, leg.get_texts()):
                assert text.get_text() in series_of, text.get_text()
                assert _rgb(handle.get_color()) == _rgb(series_of[text.get_text()].get_color()), text.get_text()
    finally:
        plots.pyplot().close(fig)


# ---------------------------------------------------------------- main job figure

def _main_job_result():
    tau = np.logspace(-1, 4, 60)
    decay = 1 / (1 + tau)

    def curves():
        return SimpleNamespace(tau=tau, train_loss=0.5 + 0.5 * decay, test_loss=0.8 + 0.2 * decay,
                               score_error=0.1 + decay, emp_distance=0.2 + decay)

    ts = SimpleNamespace(tau_gen=2.0, tau_mem=300.0, lambda_mem=0.02)
    sim = SimpleNamespace(curves=curves(), timescales=ts,
                          spectrum=SimpleNamespace(nodes=np.logspace(-3, 1, 40), weights=np.full(40, 1 / 40),
                                                   method="exact"))
    cfg = SimpleNamespace(d=8, p=64, n=16, t=0.1, activation="relu", data=SimpleNamespace(kind="gaussian"),
                          psi_p=8.0, psi_n=2.0)
    return SimpleNamespace(config=cfg, simulation=sim, theory=SimpleNamespace(curves=curves(), timescales=ts),
                           prediction=SimpleNamespace(edges=[(1e-3, 1e-2), (0.1, 2.0)], d=8))


def test_main_job_figure_has_a_legend_entry_for_every_drawn_element():
    fig = plots.main_job_figure(_main_job_result())
    try:
        for ax in fig.axes:
            leg = ax.get_legend()
            assert leg is not None
            texts = {t.get_text() for t in leg.get_texts()}
            handle_rgb = set()
            for h in leg.legend_handles:
                handle_rgb.add(_rgb(h.get_color() if hasattr(h, "get_color") and not hasattr(h, "get_facecolor")
                                    else h.get_facecolor()))
            in_container = {id(p) for c in ax.containers for p in c}
            drawn = list(ax.lines) + [p for p in ax.patches if id(p) not in in_container] + list(ax.containers)
            spans = 0
            for art in drawn:
                label = art.get_label()
                if label and not label.startswith("_"):
                    assert label in texts, label
                colour = art.get_color() if hasattr(art, "get_color") else \
                    art.get_facecolor() if hasattr(art, "get_facecolor") else art[0].get_facecolor()
                assert _rgb(colour) in handle_rgb, (label, colour)       # an unlabelled repeat matches a labelled one
                spans += not hasattr(art, "get_color") and hasattr(art, "get_facecolor")
        assert spans == 2                                                # both bulks were drawn (last axis)
    finally:
        plots.pyplot().close(fig)
