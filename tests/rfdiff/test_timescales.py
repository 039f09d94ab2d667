import numpy as np
import pytest

from rfdiff import timescales


def test_tau_gen_and_mem_on_synthetic_curves():
    tau = np.logspace(-1, 6, 701)
    score = 0.1 + np.exp(-tau / 5.0) + 0.5 * (1 - np.exp(-tau / 1e4))
    g = timescales.tau_gen(tau, score, frac=0.1)
    # analytic crossing: e^{-τ/5} ≈ 0.01 → τ ≈ 23
    assert abs(g["tau_gen"] - 5 * np.log(1 / (0.1 * g["min"]))) / g["tau_gen"] < 0.15
    gap = 2.0 * (1 - np.exp(-tau / 3e3))
    m = timescales.tau_mem(tau, gap, frac=0.5, abs_threshold=0.2)
    np.testing.assert_allclose(m["tau_mem"], 3e3 * np.log(2), rtol=1e-3)
    np.testing.assert_allclose(m["tau_mem_abs"], -3e3 * np.log(0.9), rtol=1e-3)
    assert "definition" in m and m["level"] == pytest.approx(1.0, rel=1e-6)


def test_tau_mem_scales_with_n():
    tau = np.logspace(0, 8, 400)
    vals = [timescales.tau_mem(tau, 1 - np.exp(-tau / (10 * n)))["tau_mem"] for n in (10, 100, 1000)]
    np.testing.assert_allclose(np.diff(np.log10(vals)), 1.0, atol=0.02)


def test_bad_input():
    with pytest.raises(ValueError):
        timescales.tau_gen([1, 2], [1.0])
    with pytest.raises(ValueError):
        timescales.tau_mem([2, 1], [0.0, 1.0])
