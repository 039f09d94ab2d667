"""rfdiff_analysis/report_rows.py: the claims as the paper states them, each row with its parameters (docs/theory.md §6.4)."""
import math

import numpy as np

from rfdiff.pipelines import paper
from rfdiff.stats import Estimate
from rfdiff_analysis import report_rows as rr
from rfdiff_analysis import verdict

QUICK = paper.PRESETS["quick"]


def _table(x, sim, theory, q="min_score_error", seeds=5):
    return paper.SeedTable(tuple(x), tuple(range(seeds)), {q: tuple(map(tuple, sim))}, {q: tuple(theory)})


def _min_score(a_sim, a_th, noise=0.002, seeds=5):
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    rng = np.random.default_rng(0)
    sim = 0.1 * x ** a_sim * np.exp(noise * rng.standard_normal((seeds, x.size)))
    return paper.MinScoreSummary({}, None, None, (), (), _table(x, sim, 0.1 * x ** a_th, seeds=seeds))


def test_power_law_rows_judge_both_sides_and_simulation_against_theory():
    rows = rr.min_score_rows(_min_score(-0.59, -0.59), QUICK.min_score)
    assert [r.id for r in rows] == ["min_score.theory", "min_score.simulation", "min_score.sim_vs_theory"]
    assert all(r.outcome == verdict.AGREE for r in rows)
    off = {r.id: r.outcome for r in rr.min_score_rows(_min_score(-0.40, -0.59), QUICK.min_score)}
    assert off == {"min_score.theory": verdict.AGREE, "min_score.simulation": verdict.DISAGREE,
                   "min_score.sim_vs_theory": verdict.DISAGREE}
    few = {r.id: r.outcome for r in rr.min_score_rows(_min_score(-0.59, -0.59, seeds=3), QUICK.min_score)}
    assert few["min_score.simulation"] == "no verdict (3 seeds)"


def test_every_row_states_its_parameters():
    """The Fig. 13 row says ψ_p, t and d (it once quoted none of them)."""
    M = QUICK.min_score
    for r in rr.min_score_rows(_min_score(-0.59, -0.59), M):
        assert f"ψ_p = {M.psi_p:g}" in r.parameters and f"t = {M.t:g}" in r.parameters and f"d = {M.d}" in r.parameters
    sim_rows = [r for r in rr.min_score_rows(_min_score(-0.59, -0.59), M) if r.id.endswith("simulation")]
    assert "5 seeds" in sim_rows[0].parameters


def _collapse(ratio_sim, ratio_th, seeds=5):
    fr = paper.COLLAPSE_FRACTIONS
    none = {f: tuple([0.4] * seeds) for f in fr}
    sim = {"none": none, "psi_n": {f: tuple(0.4 * ratio_sim + 0.001 * np.arange(seeds)) for f in fr},
           "own_tau_mem": {f: tuple([0.0] * seeds) for f in fr}}
    th = {"none": {f: 0.4 for f in fr}, "psi_n": {f: 0.4 * ratio_th for f in fr}, "own_tau_mem": {f: 0.0 for f in fr}}
    return paper.CurvesSummary(tuple(range(seeds)), {}, None, None, paper.Collapse(fr, sim, th), {}, None)


def test_collapse_is_judged_against_the_unrescaled_control():
    """Collapse under τ/ψ_n: the spread as a fraction of the unrescaled one; ¼ or less collapses, ~1 does not."""
    good = {r.id: r.outcome for r in rr.curves_rows(_collapse(0.05, 0.05), QUICK.learning_curves)}
    assert good == {"curves.collapse.theory": verdict.AGREE, "curves.collapse.simulation": verdict.AGREE}
    bad = {r.id: r.outcome for r in rr.curves_rows(_collapse(1.1, 1.1), QUICK.learning_curves)}
    assert bad == {"curves.collapse.theory": verdict.DISAGREE, "curves.collapse.simulation": verdict.DISAGREE}


def test_points_of_one_claim_combine_like_local_slopes():
    ok = verdict.judge(Estimate(1.0, 0.99, 1.01, 0.95, 8, "mean over 8 seeds"), 1.0, 0.1)
    off = verdict.judge(Estimate(2.0, 1.99, 2.01, 0.95, 8, "mean over 8 seeds"), 1.0, 0.1)
    wide = verdict.judge(Estimate(1.0, 0.5, 1.5, 0.95, 8, "mean over 8 seeds"), 1.0, 0.1)
    assert rr._combine([ok, ok], "x").outcome == verdict.AGREE
    assert rr._combine([ok, off, wide], "x").outcome == verdict.DISAGREE
    assert rr._combine([ok, wide], "x").outcome == verdict.INCONCLUSIVE
    assert rr._combine([], "x") == "no verdict (no checkpoint)"


def test_every_tolerance_says_why():
    for name, (tol, why) in rr.TOLERANCES.items():
        assert tol > 0 and math.isfinite(tol) and len(why.split()) >= 8, name
