"""Shared fixtures.

The global JAX setting is left at its default (float32): the library computes in float64 locally
(``jax.enable_x64`` contexts, numpy float64), and tests/rfdiff/test_study.py checks that it does so
without touching ``jax_enable_x64``. Tests that build their own JAX arrays in float64 do it locally.
"""
import jax
import pytest


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)
