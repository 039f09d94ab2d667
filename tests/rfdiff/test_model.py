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
    assert pr.train.U.dtype == pr.emp_cross.dtype == np.float64 and pr.fisher > 0 and pr.emp_sq > 0
    X = np.zeros((6, 4))
    assert np.array_equal(model.build_problem(cfg, X=X).X, X)
    with pytest.raises(ValueError, match="^X"):
        model.build_problem(cfg, X=np.zeros((5, 4)))
