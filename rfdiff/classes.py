"""Class-resolved losses and timescales for Gaussian-mixture data (extends docs/theory.md §2–4 to classes).

P_0 = Σ_c π_c P_c with P_c = N(μ_c, Σ_c). One RF score is trained on the whole training set
(the shared A(τ) of docs/theory.md §3); it is evaluated on each class separately:

- train loss of class c: the quadratic form of docs/theory.md §2 with ``U_c = (1/n_c) Σ_{ν∈c} E_ξ φ_νφ_νᵀ``,
  ``V_c`` likewise (class c's training points); ``Σ_c (n_c/n) U_c = U``;
- test loss of class c: with ``Ũ_c, Ṽ_c`` = population matrices of the single component P_c
  (``Σ_c π_c Ũ_c = Ũ``); gap = test − train;
- score error of class c: ``(1/d) E_{y~P_{c,t}} ‖s_A(y) − ∇log P_t(y)‖²`` against the score of the
  full mixture P_t (cross moment ``E_c[φ ∇log P_tᵀ]`` and ``E_c‖∇log P_t‖²`` by Monte Carlo);
  ``class_score_error`` is the same distance to the class score ∇log P_{c,t} (exact, Stein);
- distance to the empirical score of the whole training set, on y ~ P_{c,t} (Monte Carlo).

With ``B(τ) = (1/√Δ_t) Yᵀ diag(f) Qᵀ`` every one of these is a quadratic form in f(τ) with the
class's matrices projected on the eigenbasis of U, so the per-class curves reuse
:class:`rfdiff.dynamics.ExactDynamics` with the class's (H, g) in place of the population ones.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._util import check_finite_array, check_positive_int, x64
from .data import GaussianMixture
from .diffusion import delta
from .dynamics import ExactDynamics, exact_dynamics
from .features import features
from .matrices import population_matrices, train_matrices
from .metrics import empirical_score
from .population import Population
from .results import Curves, Thresholds, Timescales
from .timescales import extract


def class_component(data: GaussianMixture, c: int) -> GaussianMixture:
    """The single-component law P_c = N(μ_c, O diag(λ_c) Oᵀ) of class c (weight 1)."""
    if not isinstance(data, GaussianMixture):
        raise ValueError("data must be a GaussianMixture")
    if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < data.n_components:
        raise ValueError(f"class index must be an integer in [0, {data.n_components}), got {c!r}")
    return GaussianMixture(np.ones(1), data.means[c:c + 1], data.eigvals[c:c + 1], data.basis,
                           name=f"{data.name}[class {c}]")


def class_counts(weights: Sequence[float], n: int) -> np.ndarray:
    """n_c = π_c n rounded by largest remainders (Σ n_c = n); ValueError if a class would get no point."""
    n = check_positive_int("n", n)
    w = np.asarray(weights, dtype=np.float64)
    counts = np.floor(w * n).astype(int)
    counts[np.argsort(-(w * n - counts))[: n - counts.sum()]] += 1
    if np.any(counts == 0):
        raise ValueError(f"n={n} is too small: some class gets no training point (counts {counts.tolist()})")
    return counts


@x64
def stratified_sample(key: jax.Array, data: GaussianMixture, n: int) -> tuple[jnp.ndarray, np.ndarray]:
    """n training points with exactly n_c = round(π_c n) from class c (:func:`class_counts`); returns (X, labels)."""
    counts = class_counts(data.weights, n)
    keys = jax.random.split(key, data.n_components)
    X = jnp.concatenate([class_component(data, c).sample(keys[c], int(k)) for c, k in enumerate(counts)])
    return X, np.repeat(np.arange(data.n_components), counts)


def _check_labels(labels, n, C):
    lab = np.asarray(labels)
    if lab.shape != (n,) or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"labels must be {n} integers, got shape {lab.shape} dtype {lab.dtype}")
    if np.any(lab < 0) or np.any(lab >= C):
        raise ValueError(f"labels must lie in [0, {C})")
    if np.any(np.bincount(lab, minlength=C) == 0):
        raise ValueError("every class needs at least one training point")
    return lab


@dataclasses.dataclass(frozen=True, eq=False)
class ClassMatrices:
    """Per-class matrices: train (U_c, V_c), population (Ũ_c, Ṽ_c), Monte Carlo score moments, counts, weights."""

    U: tuple
    V: tuple
    U_pop: tuple
    V_pop: tuple
    fisher_class: np.ndarray        # J_c = E_c ‖∇log P_{c,t}‖² (exact)
    mix_cross: tuple                # E_c[φ ∇log P_tᵀ] (p, d), Monte Carlo
    mix_sq: np.ndarray              # E_c ‖∇log P_t‖²
    emp_cross: tuple                # E_c[φ s_empᵀ]
    emp_sq: np.ndarray              # E_c ‖s_emp‖²
    counts: np.ndarray
    weights: np.ndarray
    t: float

    def total(self):
        """(U, V, Ũ, Ṽ) of the whole problem: Σ_c (n_c/n)(U_c, V_c) and Σ_c π_c (Ũ_c, Ṽ_c)."""
        fr = self.counts / self.counts.sum()
        return (sum(f * np.asarray(u) for f, u in zip(fr, self.U)), sum(f * v for f, v in zip(fr, self.V)),
                sum(w * np.asarray(u) for w, u in zip(self.weights, self.U_pop)),
                sum(w * v for w, v in zip(self.weights, self.V_pop)))


@x64
def class_matrices(key: jax.Array, W, X, labels, data: GaussianMixture, t: float, activation="tanh",
                   tol: float = 1e-8, n_mc: int = 4096) -> ClassMatrices:
    """Per-class U_c, V_c (class c's points), Ũ_c, Ṽ_c (component c) and Monte Carlo score moments (module doc)."""
    if not isinstance(data, GaussianMixture):
        raise ValueError("data must be a GaussianMixture")
    W = jnp.asarray(check_finite_array("W", W), dtype=jnp.float64)
    X = jnp.asarray(check_finite_array("X", X), dtype=jnp.float64)
    if W.ndim != 2 or W.shape[1] != data.d or X.ndim != 2 or X.shape[1] != data.d:
        raise ValueError(f"W must be (p, d={data.d}) and X (n, d={data.d}); got {W.shape}, {X.shape}")
    n_mc = check_positive_int("n_mc", n_mc)
    C = data.n_components
    lab = _check_labels(labels, X.shape[0], C)
    noised = data.noised(t)
    dt = delta(t)
    U, V, Up, Vp, Jc, mx, ms, ex, es = [], [], [], [], [], [], [], [], []
    for c in range(C):
        comp = class_component(data, c)
        tr = train_matrices(W, X[lab == c], t, activation, tol=tol)
        pop = population_matrices(W, comp, t, activation, tol=tol)
        U.append(tr.U)
        V.append(tr.V)
        Up.append(pop.U)
        Vp.append(pop.V)
        Jc.append(comp.noised(t).fisher_information()[0])
        k1, k2 = jax.random.split(jax.random.fold_in(key, c))
        Y = math.exp(-t) * comp.sample(k1, n_mc) + math.sqrt(dt) * jax.random.normal(k2, (n_mc, data.d))
        phi = features(W, Y, activation)
        s_mix = noised.score(Y)
        s_emp = empirical_score(Y, X, t)
        mx.append(phi.T @ s_mix / n_mc)
        ms.append(float(jnp.mean(jnp.sum(s_mix * s_mix, axis=1))))
        ex.append(phi.T @ s_emp / n_mc)
        es.append(float(jnp.mean(jnp.sum(s_emp * s_emp, axis=1))))
    return ClassMatrices(tuple(U), tuple(V), tuple(Up), tuple(Vp), np.array(Jc), tuple(mx), np.array(ms),
                         tuple(ex), np.array(es), np.bincount(lab, minlength=C), data.weights.copy(), float(t))


def _view(dyn: ExactDynamics, Mu, Mv, fisher=None, cross=None, sq=None) -> ExactDynamics:
    """``dyn`` with (Mu, Mv) in place of (Ũ, Ṽ) (and optionally the cross moment of a reference score)."""
    Q, Y = dyn.Q, dyn.Y
    H = (Y @ Y.T) * (Q.T @ (jnp.asarray(Mu, dtype=jnp.float64) @ Q))
    g = jnp.sum(Y * (Q.T @ jnp.asarray(Mv, dtype=jnp.float64)), axis=1)
    g_ref = (jnp.sum(Y * (Q.T @ jnp.asarray(cross, dtype=jnp.float64)), axis=1) if cross is not None
             else jnp.zeros(Y.shape[0]))
    return dataclasses.replace(dyn, H=H, g=g, g_emp=g_ref, emp_sq=0.0 if sq is None else float(sq), fisher=fisher)


@dataclasses.dataclass(frozen=True, eq=False)
class ClassDynamics:
    """Per-class views of one shared dynamics; :meth:`curves` gives (C, T) arrays (module docstring)."""

    dyn: ExactDynamics
    train_views: tuple
    test_views: tuple
    emp_views: tuple
    counts: np.ndarray
    weights: np.ndarray

    @x64
    def curves(self, taus, eta: Optional[float] = None) -> Curves:
        """Per-class curves, arrays (C, T): train/test loss, gap, score error to the mixture score,
        empirical distance; ``extra["class_score_error"]`` is the distance to the class score (module docstring)."""
        rows = {k: [] for k in ("train_loss", "test_loss", "score_error", "class_score_error", "emp_distance")}
        for tv, te, em in zip(self.train_views, self.test_views, self.emp_views):
            c = te.curves(taus, eta)
            rows["train_loss"].append(tv.curves(taus, eta).test_loss)
            rows["test_loss"].append(c.test_loss)
            rows["score_error"].append(c.emp_distance)        # reference score = mixture score
            rows["class_score_error"].append(c.score_error)   # Stein form, reference = class score
            rows["emp_distance"].append(em.curves(taus, eta).emp_distance)
        a = {k: np.stack(v) for k, v in rows.items()}
        return Curves(np.atleast_1d(np.asarray(taus, dtype=np.float64)), a["train_loss"], a["test_loss"], None,
                      a["score_error"], a["emp_distance"], {"class_score_error": a["class_score_error"]},
                      method="exact modes, per class")


@x64
def class_dynamics(dyn: ExactDynamics, mats: ClassMatrices) -> ClassDynamics:
    """Per-class views of the shared dynamics ``dyn`` (any ExactDynamics, e.g. with a ridge or finite-m core)."""
    if not isinstance(dyn, ExactDynamics) or not isinstance(mats, ClassMatrices):
        raise ValueError("class_dynamics needs an ExactDynamics and a ClassMatrices")
    p = dyn.Q.shape[0]
    if np.shape(mats.U_pop[0]) != (p, p) or abs(dyn.t - mats.t) > 1e-15:
        raise ValueError(f"class matrices (p={np.shape(mats.U_pop[0])[0]}, t={mats.t}) do not match the dynamics "
                         f"(p={p}, t={dyn.t})")
    C = len(mats.U)
    train = tuple(_view(dyn, mats.U[c], mats.V[c]) for c in range(C))
    test = tuple(_view(dyn, mats.U_pop[c], mats.V_pop[c], mats.fisher_class[c], mats.mix_cross[c], mats.mix_sq[c])
                 for c in range(C))
    emp = tuple(_view(dyn, mats.U_pop[c], mats.V_pop[c], None, mats.emp_cross[c], mats.emp_sq[c]) for c in range(C))
    return ClassDynamics(dyn, train, test, emp, mats.counts, mats.weights)


@x64
def class_problem(key: jax.Array, W, X, labels, data: GaussianMixture, t: float, activation="tanh",
                  tol: float = 1e-8, n_mc: int = 4096) -> tuple[ExactDynamics, ClassDynamics]:
    """Shared dynamics of the whole training set (U = Σ_c (n_c/n) U_c, Ũ = Σ_c π_c Ũ_c) and its per-class views."""
    mats = class_matrices(key, W, X, labels, data, t, activation, tol, n_mc)
    U, V, Up, Vp = mats.total()
    dyn = exact_dynamics(U, V, t, Population(Up, Vp))
    return dyn, class_dynamics(dyn, mats)


def class_timescales(curves: Curves, thresholds: Thresholds = Thresholds()) -> list[Timescales]:
    """Per-class τ_gen (from the score error to the mixture score) and τ_mem (from the class gap), docs/theory.md §6.1."""
    if not isinstance(curves, Curves) or curves.score_error is None or curves.gen_gap is None \
            or curves.score_error.ndim != 2:
        raise ValueError("curves must come from ClassDynamics.curves (per-class score_error and gen_gap)")
    return [extract(Curves(curves.tau, curves.train_loss[c], curves.test_loss[c], curves.gen_gap[c],
                           curves.score_error[c]), thresholds) for c in range(curves.score_error.shape[0])]
