"""The beyond-the-paper study's pipeline (rfdiff.pipelines.beyond) at tiny sizes, through the sweep.

The library objects it runs are tested next to their modules (tests/rfdiff/test_finite_m.py,
test_ridge.py, test_classes.py); the script in tests/cli/test_beyond.py.
"""
import math
import warnings

import numpy as np
import pytest

from rfdiff import results
from rfdiff.pipelines import beyond

TINY = beyond.Sizes(d=8, n=12, p_max=96, ms=(1, 4), sweep_ms=(1,), n_tau=41, n_ridge=17, cls_d=8, cls_p=64, cls_n=32,
                    variances=(1.0, 4.0), weights=(0.25,), sub_d=8, sub_p=64, sub_n=16, Ds=(2, 8), n_mc=1024)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Every unit of the four parts at tiny sizes, through the sweep (serial, cached in a temporary folder)."""
    cache = tmp_path_factory.mktemp("beyond_cache")
    with warnings.catch_warnings():   # Ũ at d = 8 stops at Mehler order 32, 2e-8 > tol 1e-8: immaterial here
        warnings.simplefilter("ignore", RuntimeWarning)
        res, rep = beyond.run(TINY, seed=0, cache_dir=cache)
    return res, rep, cache


def test_pipeline_units_and_summaries(tiny, tmp_path):
    """Tiny sizes (d = 8, n = 12, p_max = 96; classes d = 8, p = 64; subspace d = 8, p = 64; about 9 s).

    Asserted: one unit per (part, m / value / D); the m = 1 interpolation peak at p = N = n·m with a
    train loss on the draws of 0 there and at p_max; the ridge envelope and early stopping below the
    λ = 0 test loss at every p; λ* > 0; finite-m gaps = test − (noise-averaged / frozen) train;
    class 1 of variance 4 generalises first; τ_mem reported only when the final gap ≥ 0.05;
    the result survives results.save/load and the cache answers a second run.
    """
    res, rep, cache = tiny
    assert rep.n_computed == len(beyond.units(TINY)) == 3 + 1 + 3 + 2
    assert [r.label for r in res.finite_m] == ["1", "4", "inf"] and res.parts == (1, 2, 3, 4)
    assert [r.form for r in res.finite_m] == ["dual", "dual", "exact"]
    for r in res.finite_m[:2]:
        c = r.curves
        np.testing.assert_allclose(c.gen_gap, c.test_loss - c.train_loss, rtol=1e-12)
        np.testing.assert_allclose(c["gen_gap_frozen"], c.test_loss - c["train_loss_frozen"], rtol=1e-12)
        assert r.limit["train_loss_frozen"][0] < 1e-9 and math.isfinite(r.tau_mem_frozen)
    assert math.isnan(res.finite_m[-1].tau_mem_frozen) and res.finite_m[-1].noise_sq == 1.0
    s1, sw1 = res.statics["1"], res.finite_m[0].statics
    # peak at p = N (measured 9.47 against 1.38 at p = 4; its height depends on the draw, see test_finite_m.py)
    assert s1.N == 12 and s1.p_peak == 12 and s1.test_at_peak > 5 * s1.min_test, s1
    assert np.all(sw1.train_loss_frozen[list(sw1.p).index(12):, 0] < 1e-9)
    assert res.finite_m[1].statics is None and set(res.statics) == {"1", "inf"}
    rd, sw = res.ridge, res.finite_m[-1].statics
    assert rd.lambda_opt > 0 and rd.lambdas[2] == rd.lambda_opt and len(rd.curves) == 4
    assert np.all(sw.envelope()["value"] <= sw.test_loss[:, 0] + 1e-12)
    assert np.all(rd.early_stopping_test <= sw.test_loss[:, 0] + 1e-12)
    assert res.statics["inf"].early_stopping_max == pytest.approx(rd.early_stopping_test.max())
    var = {c.unit.value: c for c in res.classes if c.unit.kind == "variance"}
    assert var[4.0].curves.test_loss.shape == (2, TINY.n_tau)
    assert var[4.0].timescales[1].tau_gen < var[4.0].timescales[0].tau_gen
    w = [c for c in res.classes if c.unit.kind == "weight"][0].row()
    assert w["counts"] == [24, 8] and w["weights"] == [0.75, 0.25]
    for s in res.subspace:
        row = s.row()
        assert (row["tau_mem"] is None) == (row["final_gap"] < beyond.MEMORISES_GAP)
        assert row["J_over_d"] > 0 and row["tau_gen"] > 0
    assert res.subspace[-1].row()["J_over_d"] == pytest.approx(1.0)       # D = d: isotropic, J = d
    back = results.load(results.save(res, tmp_path / "b")[0].with_suffix(""))
    np.testing.assert_array_equal(back.finite_m[0].statics.test_loss, sw1.test_loss)
    assert [(x.tau_gen, x.tau_mem) for x in back.classes[0].timescales] == \
        [(x.tau_gen, x.tau_mem) for x in res.classes[0].timescales]
    again, rep2 = beyond.run(TINY, seed=0, parts=[3, 4], cache_dir=cache)
    assert rep2.n_loaded == 5 and rep2.n_computed == 0 and again.finite_m == [] and again.ridge is None


def test_pipeline_figures_and_printing(tiny, capsys):
    """Every figure and the printed summary from the tiny result (plotting only)."""
    from rfdiff_analysis import plots_beyond
    from rfdiff_cli import beyond as script
    res = tiny[0]
    assert plots_beyond.figure_names(res) == list(plots_beyond.FIGURES)
    plt = plots_beyond.pyplot()
    for name in plots_beyond.figure_names(res):
        fig = plots_beyond.FIGURES[name](res)
        assert fig.axes, name
        plt.close(fig)
    script.print_summary(res)
    out = capsys.readouterr().out
    assert "[1] finite m" in out and "[2] ridge" in out and "[3] weight" in out and "[4] D/d" in out


def test_pipeline_validation():
    for bad, name in ((lambda: beyond.FiniteMUnit(8, 12, 96, -1), "m"),
                      (lambda: beyond.FiniteMUnit(8, 12, 96, 1, t=0), "t"),
                      (lambda: beyond.FiniteMUnit(8, 12, 96, 1, ps=(200,)), "ps"),
                      (lambda: beyond.ClassUnit(8, 64, 32, "mean", 1.0), "kind"),
                      (lambda: beyond.ClassUnit(8, 64, 32, "weight", 1.5), "value"),
                      (lambda: beyond.ClassUnit(8, 64, 32, "weight", 0.5, mu_norm=-1), "mu_norm"),
                      (lambda: beyond.SubspaceUnit(8, 64, 16, 9), "D"),
                      (lambda: beyond.units(TINY, parts=[5]), "parts"),
                      (lambda: beyond.units(TINY, seed=-1), "seed"), (lambda: beyond.beyond_unit("x"), "unit"),
                      (lambda: beyond.Sizes(**{**vars(TINY), "Ds": (2, 9)}), "Ds")):
        with pytest.raises(ValueError, match=f"^{name}"):
            bad()
