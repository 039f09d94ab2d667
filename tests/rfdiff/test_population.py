"""The population object (rfdiff.population, docs/theory.md §2): validated once, taken by every dynamics."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfdiff import dynamics, lanczos, ridge, training
from rfdiff.model import RFConfig, build_problem
from rfdiff.population import Population, check_population

fast = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_emp_moments_come_together():
    U, V = np.eye(3), np.ones((3, 2))
    with pytest.raises(ValueError, match="^pop.emp_cross and pop.emp_sq must be given together"):
        Population(U, V, emp_cross=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="^pop.emp_cross and pop.emp_sq must be given together"):
        Population(U, V, emp_sq=1.0)
    assert Population(U, V, 2.0, np.zeros((3, 2)), 1.0).has_emp


@fast
@given(p=st.integers(2, 6), d=st.integers(1, 4), dp=st.integers(-1, 1).filter(lambda x: x != 0))
def test_shapes_checked_at_construction(p, d, dp):
    with pytest.raises(ValueError, match="^pop.U must have shape"):
        Population(np.eye(p + dp), np.ones((p, d)))
    with pytest.raises(ValueError, match="^pop.emp_cross must have shape"):
        Population(np.eye(p), np.ones((p, d)), emp_cross=np.ones((p + dp, d)), emp_sq=1.0)


def test_bad_entries_named():
    with pytest.raises(ValueError, match="^pop.U must be symmetric"):
        Population(np.triu(np.ones((3, 3))), np.ones((3, 2)))
    with pytest.raises(ValueError, match="^pop.V contains non-finite"):
        Population(np.eye(3), np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="^pop.fisher"):
        Population(np.eye(3), np.ones((3, 2)), fisher=np.ones(2))


def test_every_route_checks_the_population_it_is_given():
    """A Population of another (p, d), or something else, is refused by name by every consumer."""
    U, V = np.eye(4) * 2.0, np.ones((4, 2))
    other = Population(np.eye(3), np.ones((3, 2)))
    for call in (lambda pop: dynamics.exact_dynamics(U, V, 0.1, pop),
                 lambda pop: ridge.ridge_dynamics(U, V, 0.1, 0.5, pop),
                 lambda pop: ridge.statics_vs_p(U, V, 0.1, [2], [0.0], pop),
                 lambda pop: lanczos.krylov_dynamics(U, V, 0.1, pop=pop),
                 lambda pop: training.train(__import__("jax").random.key(0), training.TrainConfig(eta=1.0, tau_max=1.0),
                                            0.1, U=U, V=V, pop=pop)):
        with pytest.raises(ValueError, match="^pop must belong to p = 4, d = 2"):
            call(other)
        with pytest.raises(ValueError, match="^pop must be a rfdiff.population.Population"):
            call((U, V))
    with pytest.raises(ValueError, match="^pop must be a rfdiff.population.Population"):
        check_population({"U": U}, 4, 2)


def test_problem_carries_one_population_and_leading_blocks_are_exact():
    """build_problem returns the population once; its leading block equals the population of the first p features."""
    pr = build_problem(RFConfig(d=4, p=16, n=6, seed=2, n_emp=256))
    pop = pr.population
    assert pop.U is pr.pop.U and pop.V is pr.pop.V and pop.has_emp and pop.fisher > 0
    sub = pop.leading(8)
    np.testing.assert_array_equal(sub.U, pop.U[:8, :8])
    np.testing.assert_array_equal(sub.emp_cross, pop.emp_cross[:8])
    assert (sub.p, sub.d, sub.fisher, sub.emp_sq) == (8, 4, pop.fisher, pop.emp_sq)
    streamed = build_problem(RFConfig(d=4, p=16, n=6, seed=2, n_emp=256), dense_population=False)
    assert not streamed.population.dense and streamed.pop.U is None
    with pytest.raises(ValueError, match="^pop.U must be a dense"):
        dynamics.from_problem(build_problem(RFConfig(d=4, p=16, n=6, seed=2, n_emp=256), dense_population=False))
