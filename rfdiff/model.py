"""Configuration and construction of one RF-score problem at a fixed diffusion time (docs/theory.md §1–2)."""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from ._util import check_fraction, check_positive, check_positive_int, gauss_hermite, row_chunks
from .activations import BUILTIN, get_activation
from .data import GaussianMixture, gaussian_spectrum, isotropic, subspace, two_class_mixture
from .features import init_W
from .matrices import FeatureMoments, population_matrices, population_plans, train_matrices, train_plan_and_V
from .metrics import empirical_score_np
from .population import Population

DATA_KINDS = ("isotropic", "spectrum", "power_law", "mixture", "subspace")
DEFAULT_ATOMS = ((0.5, 0.5), (1.5, 0.5))
# σ_x outside: below, Σ_t is Δ_t I to rounding and the data are invisible; above, the Gauss–Hermite
# constants of the theory fail (tanh, t = 0.1: quad_error 2e-2 at σ_x = 10, s_t² < 0 at σ_x = 100)
SIGMA_X_RANGE = (1e-3, 10.0)
# the largest diffusion time: e^(-2t) ≈ 2e-9 of the signal is left (RFConfig refuses larger t)
T_MAX = 10.0
SEED_MAX = 2**32 - 1          # jax.random.PRNGKey takes 32-bit seeds without x64 (larger ones wrap silently)


def _check_atoms(atoms) -> tuple:
    """Spectrum atoms ((λ, weight), ...) as a tuple: λ finite and ≥ 0, weights > 0 summing to 1; ValueError naming ``atoms``."""
    msg = "atoms must be a non-empty sequence of (eigenvalue, weight) pairs"
    if isinstance(atoms, (str, bytes)) or not hasattr(atoms, "__len__") or len(atoms) == 0:
        raise ValueError(f"{msg}, got {atoms!r}")
    pairs = []
    for a in atoms:
        if isinstance(a, (str, bytes)) or not hasattr(a, "__len__") or len(a) != 2 \
                or any(isinstance(x, (str, bytes, bool)) for x in a):
            raise ValueError(f"{msg}, got {atoms!r}")
        try:
            lam, w = float(a[0]), float(a[1])
        except (TypeError, ValueError):
            raise ValueError(f"{msg}, got {atoms!r}") from None
        if not (math.isfinite(lam) and lam >= 0):
            raise ValueError(f"atoms: eigenvalues must be finite and >= 0, got {a[0]!r}")
        if not (math.isfinite(w) and w > 0):
            raise ValueError(f"atoms: weights must be finite and > 0, got {a[1]!r}")
        pairs.append((a[0], a[1]))
    total = sum(float(w) for _, w in pairs)
    if abs(total - 1.0) > 1e-9:
        raise ValueError(f"atoms: weights must sum to 1, got {total:g}")
    if all(float(lam) == 0.0 for lam, _ in pairs):
        raise ValueError("atoms: at least one eigenvalue must be > 0")
    return tuple(pairs)


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Which P_0 to use (docs/theory.md §1). ``kind`` ∈ DATA_KINDS.

    isotropic: N(0, σ_x² I); spectrum: atoms [(λ, weight), ...]; power_law: λ_k ∝ k^{-alpha}
    (Tr Σ/d = σ_x²); mixture: ½N(μ, σ_x² I) + ½N(-μ, σ_x² I) with ‖μ‖ = mu_norm;
    subspace: variance σ_x² on a random D-dimensional subspace.
    """

    kind: str = "isotropic"
    sigma_x: float = 1.0
    atoms: Optional[tuple[tuple[float, float], ...]] = None
    alpha: float = 1.0
    mu_norm: float = 1.0
    D: Optional[int] = None
    basis: str = "axis"

    def __post_init__(self):
        if self.kind not in DATA_KINDS:
            raise ValueError(f"unknown data kind {self.kind!r}; valid: {', '.join(DATA_KINDS)}")
        sx = check_positive("sigma_x", self.sigma_x)
        if not SIGMA_X_RANGE[0] <= sx <= SIGMA_X_RANGE[1]:
            raise ValueError(f"sigma_x must be in [{SIGMA_X_RANGE[0]:g}, {SIGMA_X_RANGE[1]:g}] (rescale the data instead), "
                             f"got {self.sigma_x!r}")
        if self.kind == "spectrum" and sx != 1.0:
            raise ValueError(f"sigma_x does not apply to kind='spectrum' (the atoms are the covariance eigenvalues: "
                             f"scale them instead), got sigma_x={self.sigma_x!r}")
        if self.atoms is not None:
            object.__setattr__(self, "atoms", _check_atoms(self.atoms))
        if self.D is not None:
            check_positive_int("D", self.D)

    def typical_variance(self) -> float:
        """A typical per-direction variance of P_0: Σ_k w_k λ_k for a spectrum, else σ_x² (its nonzero directions)."""
        if self.kind == "spectrum":
            return float(sum(float(lam) * float(w) for lam, w in (self.atoms or DEFAULT_ATOMS)))
        return self.sigma_x**2

    def build(self, d: int, key: jax.Array) -> GaussianMixture:
        """The GaussianMixture this spec describes in dimension d."""
        if self.kind == "isotropic":
            return isotropic(d, self.sigma_x)
        if self.kind == "spectrum":
            atoms = self.atoms or DEFAULT_ATOMS
            return gaussian_spectrum(d, atoms=atoms, basis=self.basis, key=key)
        if self.kind == "power_law":
            return gaussian_spectrum(d, power_law=self.alpha, sigma_x=self.sigma_x, basis=self.basis, key=key)
        if self.kind == "mixture":
            return two_class_mixture(d, self.mu_norm, self.sigma_x**2)
        return subspace(d, max(1, d // 4) if self.D is None else self.D, self.sigma_x, basis="random", key=key)


@dataclasses.dataclass(frozen=True)
class RFConfig:
    """One RF-score problem: sizes, diffusion time, activation, data and seed (docs/theory.md §1)."""

    d: int = 64
    p: int = 4096
    n: int = 512
    t: float = 0.1
    activation: str = "tanh"
    data: DataSpec = DataSpec()
    seed: int = 0
    tol: float = 1e-8          # Mehler truncation tolerance for U, Ũ
    n_emp: int = 4096          # Monte Carlo points for the empirical-score distance

    def __post_init__(self):
        for name in ("d", "p", "n", "n_emp"):
            check_positive_int(name, getattr(self, name))
        check_positive("t", self.t)
        if not self.t <= T_MAX:
            raise ValueError(f"t must be <= {T_MAX:g}: beyond it the data's share of x_t, e^(-2t) < 2e-9, is lost in "
                             f"the round-off of the theory's constants (docs/theory.md §1), got t={self.t!r}")
        check_fraction("tol", self.tol)
        if self.p < self.d:
            raise ValueError(f"p must be >= d (ψ_p = p/d ≥ 1; the theory's spectrum needs it), got p={self.p}, d={self.d}")
        if self.data.kind == "subspace" and self.data.D is not None and self.data.D > self.d:
            raise ValueError(f"D must be <= d, got D={self.data.D}, d={self.d}")
        if not isinstance(self.activation, str):
            raise ValueError(f"activation must be the name of a registered activation (rfdiff.register_activation): "
                             f"results record it by name, got {self.activation!r}")
        get_activation(self.activation)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed <= SEED_MAX:
            raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {self.seed!r}")
        if self.activation not in BUILTIN:
            _check_linear_part(self)

    @property
    def psi_p(self) -> float:
        return self.p / self.d

    @property
    def psi_n(self) -> float:
        return self.n / self.d

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check_linear_part(config: "RFConfig") -> None:
    """Refuse an activation with μ₁ = E σ(Γ_t z) z = 0 (docs/theory.md §4, eq. 12): the RF score has no
    linear part, the Gaussian-equivalent theory's τ_gen and τ_mem are undefined (64-node Gauss–Hermite)."""
    z, w = gauss_hermite(64)
    gamma = math.sqrt(math.exp(-2 * config.t) * config.data.typical_variance() + -math.expm1(-2 * config.t))
    act = get_activation(config.activation)
    v = act.numpy(gamma * np.asarray(z))
    mu1, rms = float(w @ (v * z)), math.sqrt(float(w @ (v * v)))
    if not abs(mu1) > 1e-8 * max(rms, 1e-300):
        raise ValueError(f"activation {config.activation!r} has no linear part at t={config.t:g} "
                         f"(μ₁ = E σ(Γ_t z) z = {mu1:.3g}): τ_gen and the theory are undefined for it")


@dataclasses.dataclass(frozen=True, eq=False)
class Draw:
    """The random objects of one problem: the data law P_0, the features W (p, d) and the training set X (n, d)."""

    data: GaussianMixture
    W: np.ndarray
    X: np.ndarray


def data_law(config: RFConfig) -> GaussianMixture:
    """The data law P_0 of ``config`` (its random basis, if any, from the seed's first subkey; docs/theory.md §1.1)."""
    with jax.enable_x64(True):
        k_data = jax.random.split(jax.random.PRNGKey(config.seed), 5)[0]
    return config.data.build(config.d, k_data)


def draw(config: RFConfig) -> Draw:
    """Draw P_0's random parts, W and X from ``config.seed`` in float64 (the one place they are drawn).

    The key splits into five (data, W, X, empirical-score Monte Carlo, Fisher Monte Carlo), so a seed
    gives the same W and X whatever the user's global JAX setting (docs/theory.md §1).
    """
    with jax.enable_x64(True):
        k_data, k_w, k_x, _, _ = jax.random.split(jax.random.PRNGKey(config.seed), 5)
        data = config.data.build(config.d, k_data)
        W = np.asarray(init_W(k_w, config.p, config.d, dtype=jnp.float64))
        X = np.asarray(data.sample(k_x, config.n), dtype=np.float64)
    return Draw(data, W, X)


@dataclasses.dataclass(frozen=True, eq=False)
class RFProblem:
    """Everything the exact dynamics needs: W, the training set, the train moments U, V and the
    :class:`~rfdiff.population.Population` (Ũ, Ṽ, Fisher information J of P_t, Monte Carlo moments
    of the empirical score).

    ``train`` / ``pop`` are the Mehler computations with their truncation diagnostics; ``train.U`` /
    ``pop.U`` are None when U or Ũ is streamed rather than formed: ``train_plan`` then holds U's
    Mehler plan and ``population.U`` Ũ's plans."""

    config: RFConfig
    data: GaussianMixture
    W: np.ndarray
    X: np.ndarray
    train: FeatureMoments
    pop: FeatureMoments
    population: Population
    train_plan: Optional[object] = None


def empirical_score_moments(key, W, X, data: GaussianMixture, t: float, activation, n_mc: int,
                            chunk: int = 2048) -> tuple[np.ndarray, float]:
    """Monte Carlo E_y[φ(y) s_emp(y)ᵀ] and E_y‖s_emp(y)‖² over y ~ P_t (docs/theory.md §2.7); numpy, chunked."""
    with jax.enable_x64(True):
        kx, kn = jax.random.split(key)
        Y = np.asarray(math.exp(-t) * data.sample(kx, n_mc)
                       + math.sqrt(-math.expm1(-2 * t)) * jax.random.normal(kn, (n_mc, data.d), dtype=jnp.float64))
    act = get_activation(activation)
    W, X = np.asarray(W, dtype=np.float64), np.asarray(X, dtype=np.float64)
    cross, sq = np.zeros((W.shape[0], W.shape[1])), 0.0
    for sl in row_chunks(n_mc, chunk):
        S = empirical_score_np(Y[sl], X, t)
        cross += act.numpy(Y[sl] @ W.T / math.sqrt(W.shape[1])).T @ S
        sq += float(np.sum(S * S))
    return cross / n_mc, sq / n_mc


def build_problem(config: RFConfig, X: Optional[np.ndarray] = None, dense_population: bool = True,
                  dense_train: bool = True) -> RFProblem:
    """Draw W and the training set from ``config.seed`` (:func:`draw`) and compute the exact matrices (docs/theory.md §2).

    With ``dense_population=False`` Ũ is not formed and with ``dense_train=False`` U is not
    formed: their Mehler plans are kept for streaming (the Krylov route of :mod:`rfdiff.lanczos`).
    """
    dr = draw(config)
    if X is None:
        X = dr.X
    X = np.asarray(X, dtype=np.float64)
    if X.shape != (config.n, config.d):
        raise ValueError(f"X must have shape (n, d) = ({config.n}, {config.d}), got {X.shape}")
    with jax.enable_x64(True):
        _, _, _, k_emp, k_j = jax.random.split(jax.random.PRNGKey(config.seed), 5)
    if dense_train:
        train, train_plan = train_matrices(dr.W, X, config.t, config.activation, tol=config.tol), None
    else:
        train_plan, V = train_plan_and_V(dr.W, X, config.t, config.activation, tol=config.tol)
        train = FeatureMoments(None, V, train_plan.order, train_plan.error,
                               {"method": "mehler (streamed)", **train_plan.info,
                                "converged": bool(train_plan.error < config.tol)})
    plans = None
    if dense_population:
        pop = population_matrices(dr.W, dr.data, config.t, config.activation, tol=config.tol)
    else:
        plans, V_pop = population_plans(dr.W, dr.data, config.t, config.activation, tol=config.tol)
        err = max(pl.error for _, pl in plans)
        pop = FeatureMoments(None, V_pop, max(pl.order for _, pl in plans), err,
                             {"method": "mehler (streamed)", "converged": bool(err < config.tol)})
    fisher, _ = dr.data.noised(config.t).fisher_information(k_j)
    cross, sq = empirical_score_moments(k_emp, dr.W, X, dr.data, config.t, config.activation, config.n_emp)
    population = Population(pop.U if plans is None else plans, pop.V, fisher, cross, sq)
    return RFProblem(config, dr.data, dr.W, X, train, pop, population, train_plan)
