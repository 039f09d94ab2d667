"""The population side of one RF-score problem at diffusion time t: what every test-side metric needs (docs/theory.md §2.2).

``L_test = 1 + (Δ_t/d) Tr(B Ũ Bᵀ) + (2√Δ_t/d) Tr(B Ṽ)`` needs Ũ, Ṽ; the score error
``E_score = (L_test - 1)/Δ_t + J/d`` adds the Fisher information J of P_t; the distance to the
empirical score ``D_emp = (1/d)[Tr(B Ũ Bᵀ) - 2 Tr(B E[φ s_empᵀ]) + E‖s_emp‖²]`` adds the two
empirical-score moments (docs/theory.md §2.7). They travel together as one :class:`Population`,
built by :func:`rfdiff.model.build_problem` and taken by every dynamics and trainer.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from ._util import check_array, check_symmetric


def _is_streamed(U) -> bool:
    """True for Ũ given as Mehler plans (a list of them, or an object with ``matmat``) instead of a matrix."""
    return isinstance(U, (list, tuple)) or hasattr(U, "matmat")


@dataclasses.dataclass(frozen=True, eq=False)
class Population:
    """Ũ (p, p), Ṽ (p, d), and optionally J and the empirical-score moments (module docstring).

    ``U`` is a dense symmetric matrix or, for the Krylov route only, the Mehler plans that stream
    it (:func:`rfdiff.matrices.population_plans`). ``emp_cross`` = E_y[φ(y) s_emp(y)ᵀ] (p, d) and
    ``emp_sq`` = E_y‖s_emp(y)‖² come together. Arrays are validated (finite, shapes) at construction.
    """

    U: object
    V: np.ndarray
    fisher: Optional[float] = None
    emp_cross: Optional[np.ndarray] = None
    emp_sq: Optional[float] = None

    def __post_init__(self):
        V = check_array("pop.V", self.V, ndim=2)
        p, d = V.shape
        object.__setattr__(self, "V", V)
        if not _is_streamed(self.U):
            U = check_symmetric("pop.U", self.U)
            if U.shape != (p, p):
                raise ValueError(f"pop.U must have shape ({p}, {p}) to match pop.V {V.shape}, got {U.shape}")
            object.__setattr__(self, "U", U)
        if self.fisher is not None:
            object.__setattr__(self, "fisher", float(check_array("pop.fisher", self.fisher, ndim=0)))
        if (self.emp_cross is None) != (self.emp_sq is None):
            raise ValueError("pop.emp_cross and pop.emp_sq must be given together")
        if self.emp_cross is not None:
            object.__setattr__(self, "emp_cross", check_array("pop.emp_cross", self.emp_cross, shape=(p, d)))
            object.__setattr__(self, "emp_sq", float(check_array("pop.emp_sq", self.emp_sq, ndim=0)))

    @property
    def p(self) -> int:
        return int(self.V.shape[0])

    @property
    def d(self) -> int:
        return int(self.V.shape[1])

    @property
    def dense(self) -> bool:
        """True when Ũ is a matrix (False: streamed Mehler plans)."""
        return not _is_streamed(self.U)

    @property
    def has_emp(self) -> bool:
        return self.emp_cross is not None

    def leading(self, p: int) -> "Population":
        """The population of the model made of the first p features: Ũ[:p, :p], Ṽ[:p], E[φ s_empᵀ][:p].

        Entries depend only on their own rows of W, so these leading blocks are exact (docs/theory.md §2)."""
        if not self.dense:
            raise ValueError("pop.U must be a dense matrix to take its leading block")
        return Population(self.U[:p, :p], self.V[:p], self.fisher,
                          None if self.emp_cross is None else self.emp_cross[:p], self.emp_sq)


def check_population(pop, p: int, d: int, *, dense: bool = True) -> Optional[Population]:
    """``pop`` (None allowed) if it is a :class:`Population` of a model with p features in dimension d
    (and, with ``dense``, Ũ a matrix); a ValueError naming ``pop`` otherwise."""
    if pop is None:
        return None
    if not isinstance(pop, Population):
        raise ValueError(f"pop must be a rfdiff.population.Population, got {type(pop).__name__}")
    if (pop.p, pop.d) != (p, d):
        raise ValueError(f"pop must belong to p = {p}, d = {d} (Ṽ of shape ({p}, {d})), got Ṽ of shape {pop.V.shape}")
    if dense and not pop.dense:
        raise ValueError("pop.U must be a dense (p, p) matrix here (streamed Ũ: rfdiff.lanczos.krylov_dynamics)")
    return pop
