"""A small exact problem shared by the tests of rfdiff.finite_m and rfdiff.ridge (built once per session)."""
from __future__ import annotations

import functools
import warnings

import jax
import numpy as np

from rfdiff import data, dynamics, features, finite_m, matrices
from rfdiff.population import Population

D4, P4, T4 = 4, 48, 0.02      # small d so that a product Gauss–Hermite rule over the noise is affordable


@functools.lru_cache(maxsize=None)
def d4_problem() -> dict:
    """d = 4, p = 48, n = 3, t = 0.02: exact U (Mehler, tol 1e-12), Ũ, and the exact-average dynamics."""
    W = features.init_W(jax.random.PRNGKey(1), P4, D4, dtype=np.float64)
    dat = data.isotropic(D4)
    X = dat.sample(jax.random.PRNGKey(2), 3)
    tr = matrices.train_matrices(W, X, T4, tol=1e-12, max_order=16)
    # Ũ truncated at order 12 (not converged to 1e-8): shared by both sides, any order will do
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pop = matrices.population_matrices(W, dat, T4, tol=1e-8, max_order=12)
    J = dat.noised(T4).fisher_information()[0]
    ex = dynamics.exact_dynamics(tr.U, tr.V, T4, Population(pop.U, pop.V, J))
    return dict(W=W, X=X, data=dat, tr=tr, pop=pop, J=J, ex=ex)


def finite_m_of(s: dict, noise, **kw):
    """Finite-m dynamics of the problem ``s`` on the frozen ``noise`` (population and averaged matrices attached)."""
    return finite_m.finite_m_dynamics(s["W"], s["X"], T4, noise, pop=Population(s["pop"].U, s["pop"].V, s["J"]),
                                      avg=(s["tr"].U, s["tr"].V), **kw)
