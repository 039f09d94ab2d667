"""Timescales read off curves and spectra by one rule (rfdiff.timescales, docs/theory.md §6)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfdiff import timescales
from rfdiff.diffusion import delta
from rfdiff.results import Curves, Spectrum, Thresholds


def test_tau_gen_and_mem_on_synthetic_curves():
    tau = np.logspace(-1, 6, 701)
    score = 0.1 + np.exp(-tau / 5.0) + 0.5 * (1 - np.exp(-tau / 1e4))
    g = timescales.tau_gen(tau, score, frac=0.1)
    # analytic crossing: e^{-τ/5} ≈ 0.01 → τ ≈ 23
    assert abs(g["tau_gen"] - 5 * np.log(1 / (0.1 * g["min"]))) / g["tau_gen"] < 0.15
    assert g["level"] == pytest.approx(1.1 * g["min"]) and g["tau_at_min"] < 1e3
    gap = 2.0 * (1 - np.exp(-tau / 3e3))
    m = timescales.tau_mem(tau, gap, frac=0.5, abs_threshold=0.2)
    np.testing.assert_allclose(m["tau_mem"], 3e3 * np.log(2), rtol=1e-3)
    np.testing.assert_allclose(m["tau_mem_abs"], -3e3 * np.log(0.9), rtol=1e-3)
    assert m["level"] == pytest.approx(1.0, rel=1e-6) and m["final_gap"] == pytest.approx(2.0, rel=1e-6)


def test_tau_mem_scales_with_n():
    tau = np.logspace(0, 8, 400)
    vals = [timescales.tau_mem(tau, 1 - np.exp(-tau / (10 * n)))["tau_mem"] for n in (10, 100, 1000)]
    np.testing.assert_allclose(np.diff(np.log10(vals)), 1.0, atol=0.02)


def test_first_crossing_interpolates_in_log_tau():
    tau = np.array([1.0, 10.0, 100.0])
    y = np.array([0.0, 1.0, 2.0])
    assert timescales.first_crossing(tau, y, 0.5, upward=True) == pytest.approx(10 ** 0.5)
    assert timescales.first_crossing(tau, y, -1.0, upward=True) == 1.0          # already above at the start
    assert math.isnan(timescales.first_crossing(tau, y, 3.0, upward=True))      # never reached
    assert timescales.first_crossing(tau, y[::-1], 0.5, upward=False) == pytest.approx(10 ** 1.5)


def test_spectral_edges_are_quantiles_of_exact_eigenvalues():
    """p exact eigenvalues: λ_mem is the (p − n + 1)-th smallest, λ_pop the (p − d + 1)-th (§6.2)."""
    p, n, d, t = 40, 12, 3, 0.1
    lam = np.arange(1.0, p + 1.0)
    s = Spectrum.from_eigenvalues(lam[::-1])
    assert timescales.memorisation_edge(s, n, p, d) == pytest.approx(lam[p - n])
    assert timescales.memorisation_upper_edge(s, n, p, d) == pytest.approx(lam[p - d - 1])
    assert timescales.population_edge(s, p, d) == pytest.approx(lam[p - d])
    assert math.isnan(timescales.memorisation_edge(s, 2, p, d))        # n ≤ d: no memorisation bulk
    assert math.isnan(timescales.memorisation_edge(s, 38, p, d))       # n + d ≥ p: no atom below it
    assert math.isnan(timescales.population_edge(s, p, p))
    assert timescales.spectral_tau(2.0, 8.0, t) == pytest.approx(8.0 / (delta(t) * 2.0))
    assert math.isnan(timescales.spectral_tau(0.0, 8.0, t)) and math.isnan(timescales.spectral_tau(math.nan, 8.0, t))


def test_extract_applies_every_rule():
    tau = np.logspace(-1, 6, 300)
    score = 0.1 + np.exp(-tau / 5.0) + 0.5 * (1 - np.exp(-tau / 1e4))
    train = 1.0 - 0.5 * (1 - np.exp(-tau / 3e3))
    test = train + 2.0 * (1 - np.exp(-tau / 3e3))
    c = Curves(tau, train, test, None, score)
    th = Thresholds(gen_frac=0.2, mem_frac=0.4, mem_abs=0.1)
    s = Spectrum.from_eigenvalues(np.arange(1.0, 41.0))
    ts = timescales.extract(c, th, s, n=12, p=40, d=3, t=0.1)
    assert ts.thresholds == th
    assert ts.tau_gen == pytest.approx(timescales.tau_gen(tau, score, 0.2)["tau_gen"])
    m = timescales.tau_mem(tau, c.gen_gap, 0.4, 0.1)
    assert (ts.tau_mem, ts.tau_mem_abs, ts.final_gap) == pytest.approx((m["tau_mem"], m["tau_mem_abs"], m["final_gap"]))
    assert ts.lambda_mem == pytest.approx(29.0) and ts.lambda_pop == pytest.approx(38.0)
    assert ts.tau_mem_spectral == pytest.approx(timescales.spectral_tau(29.0, 40 / 3, 0.1))
    # without score error, gap or spectrum the quantities are NaN, never guessed
    bare = timescales.extract(Curves(tau, train))
    assert all(math.isnan(getattr(bare, f)) for f in ("tau_gen", "tau_mem", "lambda_mem", "tau_gen_spectral"))


def test_bad_input():
    with pytest.raises(ValueError):
        timescales.tau_gen([1, 2], [1.0])
    with pytest.raises(ValueError):
        timescales.tau_mem([2, 1], [0.0, 1.0])
    with pytest.raises(ValueError, match="non-finite"):
        timescales.tau_gen([1.0, 2.0], [1.0, np.nan])
    with pytest.raises(ValueError, match="gen_frac"):
        timescales.tau_gen([1.0, 2.0], [1.0, 0.5], frac=0.0)
    with pytest.raises(ValueError, match="mem_frac"):
        timescales.tau_mem([1.0, 2.0], [0.0, 1.0], frac=1.0)


@settings(max_examples=40, deadline=None)
@given(scale=st.floats(-3, 9), rate=st.floats(0.1, 3), floor=st.floats(0.01, 1))
def test_a_timescale_at_a_grid_end_is_named_a_bound(scale, rate, floor):
    """E_score = floor + e^{-(τ/10^scale)^rate}: relaxing before τ_min gives "tau_gen<", still falling at τ_max
    "min_score_error>"; a gap that never reaches mem_abs gives "tau_mem_abs>"; otherwise no flag."""
    tau = np.logspace(-1, 7, 161)
    score = floor + np.exp(-(tau / 10.0 ** scale) ** rate)
    gap = 1e-3 * (1 - np.exp(-tau / 1e3))
    ts = timescales.extract(Curves(tau, train_loss=np.ones_like(tau), test_loss=1 + gap, score_error=score))
    within_at_start = score[0] <= (1 + ts.thresholds.gen_frac) * score.min()
    assert (ts.grid_end("tau_gen") == "<") == bool(within_at_start)
    if within_at_start:
        assert ts.tau_gen == tau[0]
    assert (ts.grid_end("min_score_error") == ">") == bool(score[-1] < score[-2])
    assert ts.grid_end("tau_mem_abs") == ">" and math.isnan(ts.tau_mem_abs)
    assert ts.grid_end("tau_mem") is None


def test_grid_end_flags_survive_saving(tmp_path):
    from rfdiff import results
    tau = np.logspace(0, 2, 20)
    ts = timescales.extract(Curves(tau, score_error=np.linspace(1.0, 0.5, 20)))
    assert ts.at_grid_end == ("min_score_error>",)
    results.save(ts, tmp_path / "ts")
    assert results.load(tmp_path / "ts").grid_end("min_score_error") == ">"
