"""rfdiff.theory.maps: where τ_mem ∝ ψ_n and τ_gen flat hold in the d → ∞ theory (docs/theory.md §6.5)."""
import math

import numpy as np
import pytest

from rfdiff import results
from rfdiff.theory import maps


def _synthetic(t=0.1):
    """Points whose τ's are pure power laws in ψ_n (and of ψ_p): the maps' slopes are the exponents exactly."""
    pts = []
    for pp in (8.0, 16.0, 64.0):
        for pn in (1.0, 1.5, 2.0, 4.0, 8.0, 32.0):
            if pn <= pp / 2:
                pts.append(maps.MapPoint(t, pp, pn, False, math.nan, math.nan, 3.0 * pn * pp, 5.0 * pn ** -0.3,
                                         2.0 * pn ** 1.1, 7.0 + 0 * pn))
    return pts


def test_assemble_recovers_power_law_exponents_exactly():
    ms = {m.quantity: m for m in maps.assemble(_synthetic())}
    assert set(ms) == {"tau_mem_spectral", "tau_gen_spectral_exact", "tau_mem_asymptotic", "tau_gen_spectral"}
    m = ms["tau_mem_spectral"]
    assert list(m.psi_p) == [8.0, 16.0, 64.0] and m.values.shape == (3, 6)
    assert np.isnan(m.values[0, 4])                       # ψ_n = 8 > ψ_p/2 = 4: not a point of the map
    ok = np.isfinite(m.slope)
    np.testing.assert_allclose(m.slope[ok], 1.0, atol=1e-12)
    np.testing.assert_allclose(ms["tau_gen_spectral_exact"].slope[ok], -0.3, atol=1e-12)
    np.testing.assert_allclose(ms["tau_mem_asymptotic"].slope[ok], 1.1, atol=1e-12)
    assert ms["tau_mem_spectral"].holds(0.05)[ok].all()
    assert not ms["tau_mem_asymptotic"].holds(0.05)[ok].any() and ms["tau_mem_asymptotic"].holds(0.11)[ok].all()
    assert not ms["tau_gen_spectral_exact"].holds(0.05).any() and ms["tau_gen_spectral"].holds(1e-12)[ok].all()


def test_maps_save_and_load(tmp_path):
    ms = maps.assemble(_synthetic())
    results.save(ms, tmp_path / "m")
    back = results.load(tmp_path / "m")
    assert [b.quantity for b in back] == [m.quantity for m in ms]
    np.testing.assert_array_equal(back[0].slope, ms[0].slope)


def test_tiny_theory_grid_matches_theorem_32():
    """Four spectral points: Theorem 3.2's τ_mem exponent by finite differences agrees with its closed form to
    the grid's second-order error, and Theorem 3.2's τ_gen is flat in ψ_n."""
    units = maps.plan([0.1], [64.0], [2.0, 2.2, 2.42, 2.662])
    assert len(units) == 4 and not any(u.curves for u in units)
    ms = {m.quantity: m for m in maps.assemble([maps.run_map_unit(u) for u in units])}
    exact = maps.asymptotic_mem_exponent(0.1, 64.0, ms["tau_mem_asymptotic"].psi_n)
    np.testing.assert_allclose(ms["tau_mem_asymptotic"].slope[0], exact, atol=2e-3)
    np.testing.assert_allclose(ms["tau_gen_spectral"].slope[0], 0.0, atol=1e-9)
    assert np.all(np.isfinite(ms["tau_mem_spectral"].slope))
    assert "tau_mem" not in ms                            # no curve-based unit in this plan


def test_asymptotic_exponent_tends_to_one():
    assert maps.asymptotic_mem_exponent(0.1, 1e8, 1.0) == pytest.approx(1.0, abs=1e-3)


def test_bad_input():
    with pytest.raises(ValueError, match="psi_n"):
        maps.MapUnit(0.1, 8.0, 5.0)
    with pytest.raises(ValueError, match="t must"):
        maps.MapUnit(-0.1, 8.0, 1.0)
    with pytest.raises(ValueError, match="psi_ps"):
        maps.plan([0.1], [8.0, 4.0], [1.0])
    with pytest.raises(ValueError, match="quantities"):
        maps.assemble(_synthetic(), ["tau_x"])
    with pytest.raises(ValueError, match="preset"):
        maps.preset_units("huge")
    assert len(maps.preset_units("quick")) == 9
