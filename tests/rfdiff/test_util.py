"""Shared validators and helpers (rfdiff._util): bad input gets a one-line error naming the parameter.

Property-based (Hypothesis); the validators of each configuration class are tested next to their
module (test_model.py, test_study.py, test_results.py, test_dynamics.py, test_matrices.py) and the
command line's in tests/cli/.
"""
import math

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfdiff._util import (check_array, check_fraction, check_positive, check_positive_int, check_symmetric, row_chunks,
                          x64)

fast = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

arrays = st.sampled_from([np.zeros((0, 3)), np.full((3, 3), np.nan), np.ones((3, 3)) * (1 + 1j), np.ones(3),
                          np.ones((3, 4)), np.array([["a"]]), np.triu(np.ones((3, 3)))])


@fast
@given(M=arrays)
def test_matrix_arguments_refused_by_name(M):
    with pytest.raises(ValueError, match="^U "):
        check_symmetric("U", M)


@fast
@given(value=st.one_of(st.integers(max_value=0), st.floats(allow_nan=True), st.booleans(), st.text(max_size=3),
                       st.none()))
def test_check_positive_int_refuses_by_name(value):
    with pytest.raises(ValueError, match="^steps "):
        check_positive_int("steps", value)


@fast
@given(value=st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.just(math.inf), st.text(max_size=3), st.none()))
def test_check_positive_refuses_by_name(value):
    with pytest.raises(ValueError, match="^eta "):
        check_positive("eta", value)


@fast
@given(value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3)))
def test_check_fraction_is_open_unit_interval(value):
    try:
        v = check_fraction("tol", value)
    except ValueError as err:
        assert str(err).startswith("tol ")
        assert not (0 < value < 1)
    else:
        assert 0 < v < 1 and v == float(value)


def test_check_array_returns_float64():
    a = check_array("A", np.arange(6, dtype=np.int32).reshape(2, 3))
    assert a.dtype == np.float64 and a.shape == (2, 3)
    with pytest.raises(ValueError, match=r"^A must have shape \(3, ·\)"):
        check_array("A", np.ones((2, 3)), shape=(3, None))


def test_check_symmetric_accepts_round_off_asymmetry():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((6, 6))
    M = M @ M.T
    M[0, 1] += 1e-12
    assert check_symmetric("U", M).dtype == np.float64


def test_x64_decorator_is_local():
    """``x64`` computes in float64 inside and leaves the global setting as it was."""
    before = jax.config.jax_enable_x64

    @x64
    def f():
        return jax.numpy.zeros(()).dtype

    assert f() == np.float64
    assert jax.config.jax_enable_x64 == before


def test_row_chunks_cover_every_row_once():
    assert [(s.start, s.stop) for s in row_chunks(10, 4)] == [(0, 4), (4, 8), (8, 10)]
    assert list(row_chunks(0, 4)) == []
