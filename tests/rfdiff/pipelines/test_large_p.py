"""rfdiff.pipelines.large_p: the plan, the time model, the local exponents and the summary."""
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from large_p_fakes import GEN_SHIFT, result
from rfdiff.pipelines import large_p as lp
from rfdiff.study import Study, TauGrid

TINY = lp.Preset(blocks=(lp.Block(64.0, (8, 16, 32)),), psi_ns=(2.0, 4.0, 8.0), seeds=(0, 1, 2),
                 taus=TauGrid(1e-1, 1e8, 161))


def fake(preset, **kw):
    return {lab: result(lab, u, **kw) for lab, u in lp.plan(preset).items()}


def test_plan_labels_units_and_order():
    P = lp.PRESETS["full"]
    pl = lp.plan(P)
    assert len(pl) == 6 * 4 * 5 * 2
    labs = list(pl)
    assert [lab.d for lab in labs] == sorted(lab.d for lab in labs)          # small d first
    for lab, u in pl.items():
        assert isinstance(u, Study) and u.config.d == lab.d and u.config.p == 256 * lab.d
        assert u.config.n == lab.n and u.config.seed == lab.seed and u.options.model == lab.model
        assert u.options.theory == (lab.model == "exact" and lab.seed == 0)
        # the spectrum rides along where its eigenvalues are cheap, and is skipped beyond (the study reads the curves)
        assert u.options.spectrum == ("none" if lab.model == "exact" and lab.p > 8192 else "auto")
    # the exact model and its control share the draw: same configuration, different model
    assert pl[lp.Label(16, 256.0, 2.0, "exact", 3)].config == pl[lp.Label(16, 256.0, 2.0, "ge", 3)].config
    p512 = lp.plan(lp.PRESETS["full_512"])
    assert {lab.d for lab in p512 if lab.psi_p == 512.0} == {8, 12, 16, 32, 64}


def test_preset_validation_names_the_parameter():
    with pytest.raises(ValueError, match="^psi_ns"):
        lp.Preset(psi_ns=(4.0,))
    with pytest.raises(ValueError, match="^psi_ns"):
        lp.Preset(blocks=(lp.Block(8.0, (16,)),), psi_ns=(2.0, 8.0))          # n + d ≥ p
    with pytest.raises(ValueError, match="^ds"):
        lp.Preset().restrict(ds=(48,))
    with pytest.raises(ValueError, match="^seeds"):
        lp.Preset(seeds=(0, 0))
    assert lp.plan(lp.Preset().restrict(ds=(16,))) == {k: u for k, u in lp.plan(lp.Preset()).items() if k.d == 16}
    assert [b.ds for b in lp.Preset().restrict(ds=(32, 16)).blocks] == [(16, 32)]


def test_estimate_follows_the_route_cost():
    pl = lp.plan(lp.PRESETS["full"])
    by_d = {d: lp.estimate({k: u for k, u in pl.items() if k.d == d}) for d in (16, 32)}
    assert 6 < by_d[32] / by_d[16] < 10             # dense route: p³, minus the n-linear parts
    assert lp.estimate(pl, workers=4) == pytest.approx(lp.estimate(pl) / 4)
    with pytest.raises(ValueError, match="^workers"):
        lp.estimate(pl, workers=0)


def test_peak_memory_sizes_workers_by_the_route():
    """Each exact unit gets the route rfdiff.study.choose_method takes with that memory; the peak fits in it."""
    from rfdiff.study import choose_method, memory_estimate
    pl = lp.plan(lp.PRESETS["full"])
    for gb in (16, 48):
        peak, routes = lp.peak_memory(pl, gb * 2**30)
        assert peak <= gb * 2**30 and len(routes) == len(pl) // 2
        top = lp.Label(100, 256.0, 16.0, "exact", 0)
        c = pl[top].config
        assert routes[top] == choose_method(c, memory=gb * 2**30, spectrum="none")
        assert peak >= memory_estimate(c.p, c.n, c.d, routes[top], spectrum="none")
    with pytest.raises(ValueError, match=r"^p=\d+: the streamed route needs"):
        lp.peak_memory(pl, 2**30)


def test_calibrate_recovers_rates_and_overhead():
    """Stage times made of a known overhead plus operations at a known rate are read back from the results."""
    res = []
    for lab, r in fake(TINY).items():
        f = lp.unit_flops(r.study, route="dense")
        t = {"ge": {"matrices": 0.2 + f["ge"] / 1e9}} if lab.model == "ge" else \
            {"matrices": 0.5 + f["matrices"] / 4e9, "dynamics": 0.1 + f["dynamics"] / 2e10, "theory": 3.0}
        res.append(dataclasses.replace(r, timings=t["ge"] if lab.model == "ge" else t))
    cal = lp.calibrate(res)
    assert (cal.matrices, cal.dynamics, cal.ge) == pytest.approx((4e9, 2e10, 1e9), rel=1e-6)
    assert cal.overhead_seconds == pytest.approx(0.6) and cal.ge_overhead_seconds == pytest.approx(0.2)
    assert cal.theory_seconds == 3.0
    lab, u = next((lab, u) for lab, u in lp.plan(TINY).items() if lab.model == "exact" and lab.seed == 1)
    f = lp.unit_flops(u, route="dense")
    assert lp.unit_seconds(u, cal) == pytest.approx(0.6 + f["matrices"] / 4e9 + f["dynamics"] / 2e10)


@settings(max_examples=30, deadline=None)
@given(alpha=st.floats(0.2, 2.0), c=st.floats(1e-2, 1e4), k=st.integers(2, 6))
def test_local_exponents_of_a_power_law(alpha, c, k):
    x = np.geomspace(1.0, 64.0, k) * 1.5
    assert np.allclose(lp.local_exponents(x, c * x ** alpha), alpha, atol=1e-9)


def test_overall_exponent_is_the_least_squares_slope():
    x = np.array([2.0, 4.0, 8.0, 16.0])
    y = np.array([[3.0, 7.0, 20.0, 33.0], [1.0, 2.0, 4.0, 8.0]])
    assert lp.overall_exponents(x, y) == pytest.approx([np.polyfit(np.log(x), np.log(r), 1)[0] for r in y])


def test_local_exponents_refuse_unordered():
    with pytest.raises(ValueError, match="^psi_ns"):
        lp.local_exponents([4.0, 2.0], [1.0, 2.0])


def test_summary_recovers_a_known_law():
    """τ_mem = 1000 ψ_n^1.3 (1 + 4/d) against a theory ∝ ψ_n: local exponents 1.3 at every d, excess 1 + 4/d."""
    S = lp.summarize(fake(TINY, alpha=1.3, b=4.0), TINY)
    for x in S.local_exponents:
        want = (1.3, 1.0) if x.quantity == "tau_mem" else (0.3, 0.3)
        assert x.value.value == pytest.approx(want[0], abs=0.02)
        assert x.theory == pytest.approx(want[1], abs=0.02)
    for x in S.overall_exponents:
        assert x.value.value == pytest.approx(1.3 if x.quantity == "tau_mem" else 0.3, abs=0.02)
    p = S.point("exact", 64.0, 16, 8.0, "tau_mem")
    assert p.excess.value == pytest.approx(8.0 ** 0.3 * (1 + 4 / 16), rel=0.02)
    e = S.extrapolation("exact", 64.0, "tau_mem", 2.0)
    assert e.fit.a.value == pytest.approx(1.3, abs=0.02) and e.d_within is None and e.d_within_fit == math.inf
    g = S.extrapolation("exact", 64.0, "tau_gen", 4.0)
    assert g.d_within == 8 and abs(g.fit.a.value - g.theory) < 0.02
    tg = S.point("ge", 64.0, 32, 2.0, "tau_gen").value.value
    assert tg == pytest.approx(10 * 2 ** 0.3 * GEN_SHIFT, rel=0.02)


def test_summary_route_says_whether_the_krylov_basis_met_its_tolerance():
    """The route per rung names the Krylov basis and how many exact units stopped short of the tolerance."""
    res = fake(TINY)
    for lab in res:
        if lab.model == "exact" and lab.d == 32:
            ok = lab.seed != 1
            res[lab] = dataclasses.replace(res[lab], diagnostics={"method": "lanczos", "dynamics": {
                "blocks": 64, "basis_size": 2048, "converged": ok, "tol": 1e-8, "change_last_block": 1e-9 if ok else 3e-3}})
    routes = {d: r for d, _, r in lp.summarize(res, TINY).routes}
    assert routes[8] == "dense"
    assert routes[32] == "lanczos, 64 blocks, basis 2048, not converged to 1e-08 on 3 of 9 units (last-block change ≤ 3.0e-03)"


def test_summary_extrapolates_a_finite_size_approach():
    """τ_mem ∝ ψ_n^α(d) with α(d) = 1 + 8/d: the fitted d → ∞ exponent is 1 and the fit says from which d it is within 0.05."""
    res = {}
    for lab, u in lp.plan(TINY).items():
        tm = 1000.0 * lab.psi_n ** (1 + 8.0 / lab.d)
        r = result(lab, u)
        from large_p_fakes import side
        res[lab] = dataclasses.replace(r, simulation=side(u, tm, 10.0))
    S = lp.summarize(res, TINY)
    e = S.extrapolation("exact", 64.0, "tau_mem", 2.0)
    assert e.fit.a.value == pytest.approx(1.0, abs=0.02)
    assert e.d_within is None                                   # 1 + 8/32 = 1.25 at the largest d
    assert 140 < e.d_within_fit < 180                           # 8/d ≤ 0.05 from d = 160
    # held out: the fit of d = 8, 16 forecasts d = 32 (exact law, to the grid reading); forecast at a new rung
    assert e.holdout_forecast.value == pytest.approx(1 + 8 / 32, abs=1e-3)
    assert lp.forecast(S, "exact", 64.0, "tau_mem", 2.0, 64).value == pytest.approx(1 + 8 / 64, abs=1e-3)


def test_a_correction_that_turns_back_gets_no_verdict():
    """Local exponent 1.0, 1.3, 1.0 at d = 8, 16, 32 (seed scatter 1 %): a + b d^-γ cannot follow it, the
    lack-of-fit test says so, and the report gives the extrapolation no verdict."""
    from large_p_fakes import side
    from rfdiff_analysis import report_large_p
    res = {}
    for lab, u in lp.plan(TINY).items():
        alpha = 1.3 if lab.d == 16 else 1.0
        tm = 1000.0 * lab.psi_n ** alpha * (1 + 0.01 * math.sin(1.7 * lab.seed + lab.psi_n))
        res[lab] = dataclasses.replace(result(lab, u), simulation=side(u, tm, 10.0))
    S = lp.summarize(res, TINY)
    e = S.extrapolation("exact", 64.0, "tau_mem", 2.0)
    assert e.fit.lack_of_fit_p < lp.LACK_OF_FIT_ALPHA and e.form_rejected
    assert not S.extrapolation("exact", 64.0, "tau_gen", 2.0).form_rejected
    text = report_large_p.section(S, command="test")
    assert "**no verdict** (the form is rejected: lack-of-fit p = " in text and "— (form rejected)" in text
    assert "(missed) |" in text                                    # d = 8, 16 cannot foresee d = 32's turn


def test_approach_in_n_of_an_excess_set_by_n():
    """Local exponent 1 + 10/n (n = ψ_n d of the pair's smaller ψ_n) against a theory ∝ ψ_n: every pair's excess is
    10/n, its last slope −1, and it reaches 0.05 at n = 200 (d = 200/ψ_n); the report tabulates it by n."""
    from large_p_fakes import side
    from rfdiff_analysis import report_large_p
    res = {}
    for lab, u in lp.plan(TINY).items():
        tm = 1000.0 * lab.psi_n * math.exp(-2 * 10.0 * math.log(2) / (lab.psi_n * lab.d))
        res[lab] = dataclasses.replace(result(lab, u), simulation=side(u, tm, 10.0))
    S = lp.summarize(res, TINY)
    rows = lp.approach(S)
    assert [(a.psi_n_lo, a.psi_n_hi) for a in rows] == [(2.0, 4.0), (4.0, 8.0)]
    for a in rows:
        assert [e.value for e in a.excess] == pytest.approx([10.0 / n for n in a.ns], abs=2e-3)
        assert a.last_slope == pytest.approx(-1.0, abs=0.05) and a.n_within == pytest.approx(200.0, rel=0.05)
        assert a.d_within == pytest.approx(200.0 / a.psi_n_lo, rel=0.05)
    text = report_large_p.section(S, command="test")
    assert "## What sets the approach (τ_mem, exact model)" in text and "| 64 | 2 → 4 | 32 |" in text


def test_the_collapse_forecast_foresees_an_excess_set_by_n_and_misses_one_set_by_d():
    """Excess 10/n (n = ψ_n d of a pair's smaller ψ_n): every rung left out is foreseen by the others to the grid
    reading, at a new rung too, and the report counts every point foreseen. Excess 5/d for every pair instead: the
    pair at the same n from another d carries a different excess, and the forecast misses by far."""
    from large_p_fakes import side
    from rfdiff_analysis import report_large_p
    scatter = lambda lab: 1 + 1e-3 * math.sin(1.7 * lab.seed + lab.psi_n)          # noqa: E731  (seed to seed)
    laws = {"n": lambda lab: 1000.0 * lab.psi_n * math.exp(-2 * 10.0 * math.log(2) / (lab.psi_n * lab.d)) * scatter(lab),
            "d": lambda lab: 1000.0 * lab.psi_n ** (1 + 5.0 / lab.d) * scatter(lab)}
    for by, law in laws.items():
        res = {lab: dataclasses.replace(result(lab, u), simulation=side(u, law(lab), 10.0))
               for lab, u in lp.plan(TINY).items()}
        S = lp.summarize(res, TINY)
        for a in lp.approach(S):
            for n, d, e in zip(a.ns, a.ds, a.excess):
                f = lp.collapse_forecast(S, 64.0, n, exclude_d=d)
                assert f.lo <= f.hi and "left out" in f.method
                if by == "n":
                    assert f.value == pytest.approx(10.0 / n, abs=5e-3)
        if by == "n":
            assert lp.collapse_forecast(S, 64.0, 400.0).value == pytest.approx(10.0 / 400, abs=5e-3)
            text = report_large_p.section(S, command="test")
            assert "the collapse in n foresees 6 of 6 points" in text
        else:
            f = lp.collapse_forecast(S, 64.0, 32.0, exclude_d=16)   # 2 → 4 at d = 16: 5/16; 4 → 8 at d = 8: 5/8
            assert f.value == pytest.approx(5.0 / 8, rel=0.05) and not f.contains(5.0 / 16)


def test_summarize_refuses_a_missing_label():
    res = fake(TINY)
    gone = lp.Label(16, 64.0, 4.0, "ge", 1)
    del res[gone]
    with pytest.raises(KeyError, match=r"Label\(d=16, psi_p=64.0, psi_n=4.0, model='ge', seed=1\)"):
        lp.summarize(res, TINY)
    with pytest.raises(KeyError, match="seed=1"):                  # the same without a preset: the grid has a hole
        lp.summarize(res)
    res = fake(TINY)
    lab = lp.Label(32, 64.0, 8.0, "exact", 0)
    res[lab] = dataclasses.replace(res[lab], theory=None, theory_d_inf=None)
    with pytest.raises(KeyError, match="no theory for"):
        lp.summarize(res, TINY)


def test_summary_asks_only_for_planned_labels():
    res = fake(TINY)
    S = lp.summarize(res, TINY)
    assert set(S.labels) == set(lp.plan(TINY))
    extra = dict(res)
    extra[lp.Label(64, 64.0, 2.0, "exact", 0)] = object()             # a result the plan does not name is ignored
    assert lp.summarize(extra, TINY).labels == S.labels


def test_report_and_figure_from_a_summary(tmp_path):
    from rfdiff_analysis import plots_large_p, report_large_p
    S = lp.summarize(fake(TINY, alpha=1.3), TINY)
    text = report_large_p.section(S, command="test")
    assert "**disagree**" in text and "**agree**" in text             # τ_mem exponent 1.3 vs 1; τ_gen 0.3 vs 0.3
    assert "At the largest d that ran (d = 32; rungs d ∈ {8, 16, 32})" in text and "do not say" not in text
    files = plots_large_p.draw(S, tmp_path)
    assert sorted(p.name for p in files) == ["large_p.pdf", "large_p.png"]



def test_predictions_section_for_a_rung_not_in_the_cache(monkeypatch):
    """A rung missing from the results gets the predictions (the library's numbers, §8 cost note printed);
    a complete one does not. The theory is a stand-in here (its cost does not shrink with size)."""
    import large_p_fakes
    from rfdiff import study
    from rfdiff.theory import finite_d
    from rfdiff_analysis import report_large_p as rep
    monkeypatch.setattr(study, "theory_sides", large_p_fakes.theory_sides)
    note = "not computed: the §8 kernel has size n(d+1) = 624 > 500"
    monkeypatch.setattr(finite_d, "finite_d_column", lambda act, t, psi_p, psi_n, d, seeds: {"train_loss_inf": (
        finite_d.ColumnValue(0.5, "mean") if psi_n < 3 else finite_d.ColumnValue(math.nan, note))})
    pre = lp.Preset(blocks=(lp.Block(16.0, (8, 12)),), psi_ns=(2.0, 4.0), seeds=(0,), models=("exact",),
                    taus=TauGrid(1e-1, 1e8, 161))
    done = fake(pre.restrict(ds=(8,)))
    assert lp.missing_rungs(pre, done) == [(16.0, 12)]
    pred = lp.predict_missing(pre, done)
    assert [(r.psi_p, r.d) for r in pred] == [(16.0, 12)]
    r = pred[0]
    assert r.point(4.0, "tau_mem").theory == pytest.approx(4000.0, rel=0.02)          # read back by the summary's rule
    assert r.point(4.0, "tau_mem").theory_finite_d == pytest.approx(1000 * 4 ** 1.1 * (1 + 1 / 12), rel=0.02)
    text = rep.section(lp.summarize(done), command="test", predicted=pred)
    before, part = text.split("## Predictions for the rungs not yet simulated")
    assert "Written before the simulation" in part and "| 16 | 12 |" not in before
    for q in lp.QUANTITIES:
        for pn in pre.psi_ns:
            x = r.point(pn, q)
            assert f"| 16 | 12 | {pn:g} | {rep._g(x.theory)} | {rep._g(x.theory_finite_d)} |" in part
        ex = [x for x in r.local_exponents if x.quantity == q]
        assert len(ex) == 1 and ex[0].theory_finite_d == pytest.approx(
            lp.local_exponents(pre.psi_ns, [r.point(pn, q).theory_finite_d for pn in pre.psi_ns])[0])
        assert f"| 16 | 12 | 2 → 4 | {rep._f(ex[0].theory)} | {rep._f(ex[0].theory_finite_d)} |" in part
    assert [x[:2] for x in r.train_loss_inf][0] == (2.0, 0.5) and f"| 16 | 12 | 4 | — | {note} |" in part
    assert "| 16 | 8 |" not in part                                      # the complete rung is not predicted
    full = fake(pre)
    assert lp.missing_rungs(pre, full) == [] and lp.predict_missing(pre, full) == ()
    assert "## Predictions" not in rep.section(lp.summarize(full, pre), command="test", predicted=())


@pytest.mark.slow
def test_prediction_equals_the_theory_column_its_unit_carries():
    """predict_rung before the run = the theory columns summarize reads after it (real theory, tiny sizes)."""
    from rfdiff.study import run_study
    pre = lp.Preset(blocks=(lp.Block(16.0, (8,)),), psi_ns=(2.0, 4.0), seeds=(0,), models=("exact",),
                    taus=TauGrid(1e-1, 1e7, 81))
    r = lp.predict_rung(pre, 16.0, 8, train_loss=False)
    S = lp.summarize({lab: run_study(u) for lab, u in lp.plan(pre).items()}, pre)
    for q in lp.QUANTITIES:
        for pn in pre.psi_ns:
            x = S.point("exact", 16.0, 8, pn, q)
            assert (r.point(pn, q).theory, r.point(pn, q).theory_finite_d) == (x.theory, x.theory_finite_d)
