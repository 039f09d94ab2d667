"""Gaussian-equivalence constants a_t, b_t, v_t², s_t², μ_1, μ_*² (rfdiff.theory.constants, docs/theory.md §4, eqs. 12–14)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rfdiff.activations import available_activations
from rfdiff.theory import ge_constants


@pytest.mark.parametrize("act", ["tanh", "erf", "relu_centered", "gelu"])
@pytest.mark.parametrize("t,sx2", [(0.01, 1.0), (0.1, 1.0), (1.0, 2.5), (0.3, 0.4)])
def test_constants_identities(act, t, sx2):
    """a = μ1/Γ, b = √Δ μ1/Γ, s² + v² = E σ(Γz)² − μ0² − μ1² (docs/theory.md §4), quadrature accurate to 1e-10."""
    c = ge_constants(act, t, sx2)
    dt = -math.expm1(-2 * t)
    gam = math.sqrt(math.exp(-2 * t) * sx2 + dt)
    assert c.Gamma2 == pytest.approx(gam * gam, rel=1e-14)
    assert c.a == pytest.approx(c.mu1 / gam, rel=1e-12)
    assert c.b == pytest.approx(math.sqrt(dt) * c.mu1 / gam, rel=1e-12)
    assert c.s2 + c.v2 == pytest.approx(c.second_moment - c.mu0 ** 2 - c.mu1 ** 2, abs=1e-12)
    assert c.mustar2 == pytest.approx(c.s2 + c.v2, abs=1e-12)
    assert c.quad_error < 1e-10
    assert c.v2 > 0 and c.s2 > 0
    d = c.as_dict()
    json.dumps(d)
    assert d["c"] == pytest.approx(c.a ** 2 * math.exp(-2 * t))


def test_constants_relu_closed_form():
    """Centred ReLU: v_t² from the arc-cosine kernel, to 1e-12 (kinked σ: composite outer rule)."""
    for t in (0.001, 0.01, 0.1, 1.0):
        c = ge_constants("relu_centered", t, 1.0)
        rho = math.exp(-2 * t)  # correlation of σ's two arguments (Γ = 1)
        e_relu2 = (math.sqrt(1 - rho * rho) + (math.pi - math.acos(rho)) * rho) / (2 * math.pi)
        e_ss = e_relu2 - 1.0 / (2 * math.pi)  # E relu = 1/√(2π) = the centring constant
        assert c.v2 == pytest.approx(e_ss - 0.25 * math.exp(-2 * t), abs=1e-12)
        assert c.mu1 == pytest.approx(0.5, abs=1e-14)


def test_constants_monte_carlo():
    """Quadrature constants agree with a 4·10⁶-sample Monte Carlo within 5 standard errors."""
    rng = np.random.default_rng(0)
    t, sx = 0.1, 1.3
    N = 4_000_000
    u, v, w = rng.standard_normal((3, N))
    alpha, sd = math.exp(-t) * sx, math.sqrt(-math.expm1(-2 * t))
    x1, x2 = alpha * u + sd * v, alpha * u + sd * w
    c = ge_constants("tanh", t, sx * sx)
    s1, s2 = np.tanh(x1), np.tanh(x2)
    checks = {
        "b": (v * s1, c.b),
        "a": (s1 * u / alpha, c.a),
        "v2": (s1 * s2 - c.a ** 2 * alpha ** 2, c.v2),
        "s2": (s1 * s1 - c.a ** 2 * alpha ** 2 - c.v2 - c.b ** 2, c.s2),
    }
    for name, (samples, exact) in checks.items():
        se = samples.std() / math.sqrt(N)
        assert abs(samples.mean() - exact) < 5 * se, (name, samples.mean(), exact, se)


def test_constants_validation():
    with pytest.raises(ValueError):
        ge_constants("nope", 0.1)
    with pytest.raises(ValueError):
        ge_constants("tanh", -1.0)
    with pytest.raises(ValueError):
        ge_constants("tanh", 0.1, order=1000)
    assert set(available_activations()) >= {"tanh", "erf", "relu_centered", "gelu"}


# ----------------------------------------------------------------------------------------------
# Theorem 3.1 solver
