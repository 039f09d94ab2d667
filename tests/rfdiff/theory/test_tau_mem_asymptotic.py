"""rfdiff.theory.asymptotics.tau_mem_asymptotic: Theorem 3.2's τ_mem for any activation (docs/theory.md §4.8)."""
import math

import numpy as np
import pytest

from rfdiff.theory import ge_constants, spectral_timescales, spectrum_params
from rfdiff.theory.asymptotics import tau_mem_asymptotic


@pytest.mark.parametrize("activation", ["tanh", "gelu", "erf", "relu_centered"])
def test_equals_the_theorys_own_asymptotic_timescale(activation):
    """Against spectral_timescales' ``tau_mem_asymptotic`` (the left edge of ρ_1) at the same constants."""
    t, pp, pn = 0.1, 64.0, 8.0
    c = ge_constants(activation, t)
    P = spectrum_params(activation, t, pp, pn)
    ref = spectral_timescales(P, c.delta, c.mu1, c.Gamma2, t)["tau_mem_asymptotic"]
    assert float(tau_mem_asymptotic(activation, t, pp, pn)) == pytest.approx(ref, rel=1e-12)


def test_activation_is_not_hard_coded():
    """gelu's constants give another τ_mem than tanh's (the previous pipeline formula used tanh's for any)."""
    a, b = float(tau_mem_asymptotic("tanh", 0.1, 64.0, 8.0)), float(tau_mem_asymptotic("gelu", 0.1, 64.0, 8.0))
    assert math.isfinite(a) and math.isfinite(b) and abs(a / b - 1) > 0.05


def test_broadcasts_and_is_infinite_without_memorisation_bulk():
    pp, pn = np.array([4.0, 16.0, 64.0])[:, None], np.array([8.0, 32.0])[None, :]
    out = tau_mem_asymptotic("tanh", 0.1, pp, pn)
    assert out.shape == (3, 2)
    assert np.all(np.isinf(out[pp[:, 0] <= 8.0, 0])) and np.all(np.isfinite(out[2]))
    with pytest.raises(ValueError, match="psi_p and psi_n"):
        tau_mem_asymptotic("tanh", 0.1, -1.0, 2.0)
