"""Configuration and construction of one problem (rfdiff.model, docs/theory.md §1–2)."""
import math

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfdiff import model
from rfdiff.model import DataSpec, RFConfig

bad_int = st.one_of(st.integers(max_value=0), st.floats(allow_nan=True), st.booleans(), st.text(max_size=3),
                    st.none())
bad_pos = st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.just(math.inf), st.text(max_size=3), st.none())
fast = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(name=st.sampled_from(["d", "p", "n", "n_emp"]), value=bad_int)
def test_rfconfig_rejects_bad_sizes(name, value):
    with pytest.raises(ValueError, match=name):
        RFConfig(**{name: value})


@fast
@given(name=st.sampled_from(["t", "tol"]), value=bad_pos)
def test_rfconfig_rejects_bad_positives(name, value):
    with pytest.raises(ValueError, match=name):
        RFConfig(**{name: value})


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_rfconfig_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="^seed"):
        RFConfig(seed=seed)


@fast
@given(kind=st.text(min_size=1, max_size=8).filter(lambda s: s not in ("isotropic", "spectrum", "power_law",
                                                                         "mixture", "subspace")))
def test_dataspec_rejects_unknown_kinds(kind):
    with pytest.raises(ValueError, match="data kind"):
        DataSpec(kind=kind)


def test_ratios_and_dict():
    cfg = RFConfig(d=8, p=64, n=16)
    assert (cfg.psi_p, cfg.psi_n) == (8.0, 2.0)
    assert cfg.to_dict()["data"]["kind"] == "isotropic"


@pytest.mark.parametrize("kind", model.DATA_KINDS)
def test_every_data_kind_builds_in_dimension_d(kind):
    law = DataSpec(kind=kind).build(8, jax.random.PRNGKey(0))
    assert law.d == 8


def test_draw_is_float64_and_deterministic():
    """W and X are float64 numpy arrays, the same for the same seed, different for another seed."""
    cfg = RFConfig(d=4, p=16, n=5, seed=3)
    a, b = model.draw(cfg), model.draw(cfg)
    assert a.W.dtype == a.X.dtype == np.float64 and a.W.shape == (16, 4) and a.X.shape == (5, 4)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.X, b.X)
    c = model.draw(RFConfig(d=4, p=16, n=5, seed=4))
    assert not np.array_equal(a.W, c.W)


def test_build_problem_shapes_and_custom_training_set():
    cfg = RFConfig(d=4, p=24, n=6, seed=1, n_emp=256)
    pr = model.build_problem(cfg)
    assert pr.train.U.shape == pr.pop.U.shape == (24, 24) and pr.train.V.shape == pr.pop.V.shape == (24, 4)
    assert pr.train.U.dtype == pr.population.emp_cross.dtype == np.float64 and pr.population.fisher > 0 \
        and pr.population.emp_sq > 0
    X = np.zeros((6, 4))
    assert np.array_equal(model.build_problem(cfg, X=X).X, X)
    with pytest.raises(ValueError, match="^X"):
        model.build_problem(cfg, X=np.zeros((5, 4)))


# ------------------------------------------------------------------ bad values refused at construction, one line each

@fast
@given(seed=st.integers(min_value=2**32, max_value=2**80))
def test_rfconfig_rejects_seeds_beyond_the_prng(seed):
    """Seeds past 2**32 - 1 (2**70, 99999999999999999999999) are refused by name instead of overflowing in the PRNG."""
    with pytest.raises(ValueError, match=r"^seed must be an integer in \[0, 2\*\*32 - 1\]"):
        RFConfig(seed=seed)
    assert RFConfig(seed=2**32 - 1).seed == 2**32 - 1


@fast
@given(d=st.integers(2, 128), data=st.data())
def test_rfconfig_rejects_fewer_features_than_dimensions(d, data):
    p = data.draw(st.integers(1, d - 1))
    with pytest.raises(ValueError, match="^p must be >= d"):
        RFConfig(d=d, p=p, n=4)


@fast
@given(sigma_x=st.one_of(st.floats(min_value=1e-300, max_value=0.00099), st.floats(min_value=10.001, max_value=1e300)))
def test_dataspec_bounds_sigma_x(sigma_x):
    """σ_x = 1e-8 and 1e8 gave a misleading ρ_Σ error and a negative s_t²: now one line naming sigma_x."""
    with pytest.raises(ValueError, match=r"^sigma_x must be in \[0.001, 10\]"):
        DataSpec(sigma_x=sigma_x)


@fast
@given(sigma_x=st.floats(min_value=0.001, max_value=10.0).filter(lambda s: s != 1.0))
def test_spectrum_refuses_sigma_x(sigma_x):
    """``--data spectrum --sigma-x 3`` ignored σ_x (same numbers as σ_x = 1, a new hash): the combination is refused."""
    with pytest.raises(ValueError, match="^sigma_x does not apply to kind='spectrum'"):
        DataSpec(kind="spectrum", sigma_x=sigma_x)


@fast
@given(atoms=st.one_of(
    st.text(max_size=4), st.just(()), st.just(((1.0,),)), st.just((("a", 0.5), (1.0, 0.5))),
    st.lists(st.tuples(st.floats(-10, -1e-6), st.just(1.0)), min_size=1, max_size=1),
    st.lists(st.tuples(st.floats(0.1, 3.0), st.floats(0.05, 0.9)), min_size=1, max_size=4)
      .filter(lambda a: abs(sum(w for _, w in a) - 1.0) > 1e-6)))
def test_spectrum_atoms_checked_at_construction(atoms):
    """Negative eigenvalues, weights not summing to 1 (0.7) and non-pairs ("abc") are refused by DataSpec itself."""
    with pytest.raises(ValueError, match="^atoms"):
        DataSpec(kind="spectrum", atoms=atoms)


def test_subspace_dimension_checked():
    """D = 0 silently became d // 4; D > d failed only when building."""
    with pytest.raises(ValueError, match="^D must be a positive integer"):
        DataSpec(kind="subspace", D=0)
    with pytest.raises(ValueError, match="^D must be <= d"):
        RFConfig(d=8, p=64, data=DataSpec(kind="subspace", D=9))
    assert RFConfig(d=8, p=64, data=DataSpec(kind="subspace", D=2)).data.build(8, jax.random.PRNGKey(0)).eigvals.sum() \
        == pytest.approx(2.0)


def test_activation_must_be_a_savable_name():
    """``RFConfig(activation=<lambda>)`` computed fully and then could not be saved: refused up front."""
    with pytest.raises(ValueError, match="^activation must be the name of a registered activation"):
        RFConfig(activation=lambda x: x)


def test_activation_without_linear_part_refused(monkeypatch):
    """μ₁ = 0 (an even σ) left τ_gen at the grid end and a NaN theory: refused before computing."""
    from rfdiff import activations
    monkeypatch.setattr(activations, "_REGISTRY", dict(activations._REGISTRY))
    activations.register_activation("even_test", lambda x: x * x - 1.0)
    activations.register_activation("odd_test", lambda x: x + x**3 / 10)
    with pytest.raises(ValueError, match="^activation 'even_test' has no linear part"):
        RFConfig(activation="even_test")
    assert RFConfig(activation="odd_test").activation == "odd_test"


@settings(max_examples=20, deadline=None)
@given(st.floats(min_value=10.000001, max_value=1e300))
def test_rfconfig_refuses_diffusion_times_past_t_max(t):
    """t = 50 used to reach the theory and fail there (v2 = -1.6e-34 from round-off): refused up front."""
    with pytest.raises(ValueError, match=r"^t must be <= 10"):
        RFConfig(t=t)
    assert RFConfig(t=10.0).t == 10.0
