"""Ridge-regularised training of the RF score, in dynamics and statics (extends docs/theory.md §2–3).

Normalisation (chosen so that the ridge is a shift of the spectrum of U, in the units of its
eigenvalues, and the penalty carries the same 1/d as every loss of docs/theory.md §2):

.. math::

    L_λ(A) = L_{train}(A) + \\frac{Δ_t λ}{d p} \\|A\\|_F^2 = L_{train}(A) + \\frac{Δ_t λ}{d} \\|B\\|_F^2,
    \\qquad B = A/\\sqrt{p}.

Since ``L_train = 1 + (Δ_t/d) Tr(B U Bᵀ) + (2√Δ_t/d) Tr(B V)``, the penalised objective is
the same quadratic form with ``U → U + λ I``: the eigenvectors of U are unchanged and every mode
sees ``λ_i → λ_i + λ``. Gradient flow ``dA/dτ = -d² ∇L_λ`` (τ = kη/d², docs/theory.md §3) from A(0) = 0
gives ``B(τ) = (1/√Δ_t) Yᵀ diag(f) Qᵀ`` with

.. math::

    f_i(τ) = \\frac{e^{-2Δ_t(λ_i+λ)τ/ψ_p} - 1}{λ_i + λ}, \\qquad
    f_i(∞) = -\\frac{1}{λ_i + λ}

(discrete GD: ``((1 - 2ηΔ_t(λ_i+λ)/(pd))^k - 1)/(λ_i+λ)``). The τ → ∞ static solution is
``A*_λ = -√(p/Δ_t) Vᵀ (U + λ I)^{-1}``; at λ = 0 it is the minimum-norm minimiser (modes with
``λ_i ≤ rcond · λ_max`` are treated as null, the pseudo-inverse convention of ``A_infinity``).
Reported losses (train, test, score error, distance to the empirical score) are those of
docs/theory.md §2, without the penalty; the penalised objective is reported as ``objective``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import jax.numpy as jnp
import numpy as np
import scipy.linalg

from ._util import check_fraction, check_finite_array, check_positive, x64
from .diffusion import delta
from .dynamics import ExactDynamics, exact_dynamics, mode_factors_flow, mode_factors_gd
from .population import Population, check_population
from .results import Curves


def check_ridge(ridge) -> float:
    try:
        r = float(ridge)
    except (TypeError, ValueError):
        raise ValueError(f"ridge must be a number >= 0, got {ridge!r}") from None
    if not math.isfinite(r) or r < 0:
        raise ValueError(f"ridge must be finite and >= 0, got {ridge!r}")
    return r


def check_rcond(rcond) -> float:
    return check_fraction("rcond", rcond)


@dataclasses.dataclass(frozen=True, eq=False)
class RidgeDynamics(ExactDynamics):
    """:class:`~rfdiff.dynamics.ExactDynamics` with a ridge λ (``ridge``) and τ = ∞ allowed (module docstring).

    ``lam`` keeps the eigenvalues of U itself, so the inherited train loss is the unpenalised
    one; only the mode functions f_i(τ) see ``λ_i + ridge``.
    """

    ridge: float = 0.0
    rcond: float = 1e-12

    def __post_init__(self):
        object.__setattr__(self, "ridge", check_ridge(self.ridge))
        object.__setattr__(self, "rcond", check_rcond(self.rcond))

    def _lam_shifted(self) -> jnp.ndarray:
        return self.lam + self.ridge

    @x64
    def f_infinity(self) -> jnp.ndarray:
        """f_i(∞) = -1/(λ_i + λ); at λ = 0, modes with λ_i ≤ rcond·λ_max get 0 (min-norm solution)."""
        ls = self._lam_shifted()
        cut = self.rcond * float(jnp.max(ls)) if self.ridge == 0.0 else 0.0
        keep = ls > cut
        return jnp.where(keep, -1.0 / jnp.where(keep, ls, 1.0), 0.0)

    @x64
    def f(self, taus, eta: Optional[float] = None) -> jnp.ndarray:
        """f_i(τ) with λ_i → λ_i + ridge (gradient flow, or discrete GD at step η); τ = ∞ gives the static solution."""
        taus = np.atleast_1d(np.asarray(taus, dtype=np.float64))
        if taus.ndim != 1 or np.any(np.isnan(taus)) or np.any(taus < 0):
            raise ValueError("taus must be a 1-d array of values >= 0 (np.inf allowed)")
        ls = self._lam_shifted()
        dt = delta(self.t)
        inf = np.isinf(taus)
        fin = jnp.asarray(np.where(inf, 0.0, taus))
        if eta is None:
            F = mode_factors_flow(ls, fin, 2.0 * dt / self.psi_p)
        else:
            eta = check_positive("eta", eta)
            rate = 2.0 * eta * dt / (self.p * self.d)
            if rate * float(jnp.max(ls)) >= 2.0:
                raise ValueError(f"eta={eta:g} is beyond the GD stability limit p d/(Δ_t (λ_max + ridge)) = "
                                 f"{self.p * self.d / (dt * float(jnp.max(ls))):g}")
            F = mode_factors_gd(ls, jnp.round(fin * self.d**2 / eta), rate)
        if inf.any():
            F = jnp.where(jnp.asarray(inf)[:, None], self.f_infinity()[None, :], F)
        return F

    @x64
    def curves(self, taus, eta: Optional[float] = None) -> Curves:
        """Losses of docs/theory.md §2 at τ (np.inf allowed); ``extra``: ``weight_norm`` = ‖B‖²_F/d and the penalised ``objective``."""
        out = super().curves(taus, eta)
        F = self.f(taus, eta)
        fy = np.asarray((F * F) @ jnp.sum(self.Y**2, axis=1) / self.d)   # (1/d) Σ_i f_i² ‖Y_i‖² = (Δ_t/d) ‖B‖²_F
        extra = {"weight_norm": fy / delta(self.t), "objective": out.train_loss + self.ridge * fy}
        return dataclasses.replace(out, extra={**out.extra, **extra}, method=f"exact modes, ridge {self.ridge:g}")

    @x64
    def A_infinity(self) -> jnp.ndarray:
        """τ → ∞ limit A*_λ = -√(p/Δ_t) Vᵀ (U + λ I)^{-1} (min-norm at λ = 0)."""
        return self.A(np.inf)


def with_ridge(dyn: ExactDynamics, ridge: float, rcond: float = 1e-12) -> RidgeDynamics:
    """The same eigen-data with ridge λ: every mode λ_i → λ_i + λ (module docstring); no new eigendecomposition."""
    if not isinstance(dyn, ExactDynamics):
        raise ValueError(f"dyn must be an ExactDynamics, got {type(dyn).__name__}")
    base = {f.name: getattr(dyn, f.name) for f in dataclasses.fields(ExactDynamics)}
    return RidgeDynamics(**base, ridge=ridge, rcond=rcond)


def ridge_dynamics(U, V, t: float, ridge: float, pop: Optional[Population] = None,
                   rcond: float = 1e-12) -> RidgeDynamics:
    """:func:`~rfdiff.dynamics.exact_dynamics` for the objective L_train + (Δ_t λ/(d p))‖A‖²_F."""
    check_ridge(ridge)
    return with_ridge(exact_dynamics(U, V, t, pop), ridge, rcond)


@x64
def ridge_statics(U, V, t: float, ridge: float) -> np.ndarray:
    """Static ridge solution A*_λ = -√(p/Δ_t) Vᵀ (U + λI)^{-1} by a direct solve (λ > 0 or U invertible)."""
    U = np.asarray(check_finite_array("U", U), dtype=np.float64)
    V = np.asarray(check_finite_array("V", V), dtype=np.float64)
    r = check_ridge(ridge)
    p = V.shape[0]
    if V.ndim != 2 or U.shape != (p, p):
        raise ValueError(f"U must be (p, p) and V (p, d); got {U.shape} and {V.shape}")
    return -math.sqrt(p / delta(t)) * np.linalg.solve(U + r * np.eye(p), V).T


@x64
def ridge_path(dyn: ExactDynamics, ridges: Sequence[float], tau: float = np.inf, eta: Optional[float] = None) -> dict:
    """Losses at one τ (default ∞: the statics) for each ridge λ in ``ridges``: arrays over λ, key ``ridge``."""
    ridges = _ridge_grid(ridges)
    rcond = dyn.rcond if isinstance(dyn, RidgeDynamics) else 1e-12
    rows = [with_ridge(dyn, float(r), rcond).curves([tau], eta) for r in ridges]
    out = {k: np.array([row[k][0] for row in rows]) for k in rows[0] if k != "tau"}
    out["ridge"] = ridges
    out["tau"] = float(tau)
    return out


def optimal_ridge(path: dict, key: str = "test_loss") -> dict:
    """Minimum of ``path[key]`` over the ridge grid (the lower envelope point), with the minimising λ."""
    if key not in path or "ridge" not in path:
        raise ValueError(f"path must come from ridge_path and contain {key!r}")
    y = np.asarray(path[key], dtype=np.float64)
    i = int(np.nanargmin(y))
    return {"ridge": float(path["ridge"][i]), "value": float(y[i]), "index": i,
            "at_grid_edge": bool(i in (0, y.size - 1))}


def _ridge_grid(ridges) -> np.ndarray:
    r = np.atleast_1d(np.asarray(ridges, dtype=np.float64))
    if r.ndim != 1 or r.size == 0:
        raise ValueError("ridges must be a non-empty 1-d sequence")
    for x in r:
        check_ridge(x)
    return r


def _mode_losses(lam, Q, Y, t, F, pop: Optional[Population], avg, const) -> dict:
    """docs/theory.md §2 losses for rows of mode functions F (K, r) with B = (1/√Δ_t) Yᵀ diag(f) Qᵀ (numpy, no JIT);
    ``avg`` = (U, V), the exact noise-averaged training matrices, gives ``train_loss_avg``."""
    d, dt = Y.shape[1], delta(t)
    ysq = np.sum(Y * Y, axis=1)
    out = {"train_loss": const + (F * F @ (lam * ysq) + 2 * F @ ysq) / d, "weight_norm": (F * F) @ ysq / (d * dt)}
    for name, pair in (("test_loss", None if pop is None else (pop.U, pop.V)), ("train_loss_avg", avg)):
        if pair is None:
            continue
        Mu, Mv = pair
        H = (Y @ Y.T) * (Q.T @ np.asarray(Mu, dtype=np.float64) @ Q)
        g = np.sum(Y * (Q.T @ np.asarray(Mv, dtype=np.float64)), axis=1)
        out[name] = 1.0 + (np.sum((F @ H) * F, axis=1) + 2 * F @ g) / d
    if "test_loss" in out and pop.fisher is not None:
        out["score_error"] = (out["test_loss"] - 1.0) / dt + pop.fisher / d
    return out


@x64
def static_losses(lam, Q, Y, t: float, ridges, pop: Optional[Population] = None, avg=None,
                  const: float = 1.0, rcond: float = 1e-12) -> dict:
    """τ → ∞ losses from modes (λ_i, q_i, Y_i = q_iᵀV) for each ridge λ: f_i = -1/(λ_i + λ) (module docstring).

    ``pop`` gives test loss and score error, ``avg`` = (U, V) the noise-averaged train loss ``train_loss_avg``;
    ``const`` is the constant of the train loss (1, or c_Ξ for frozen draws); at λ = 0 modes with
    λ_i ≤ rcond·λ_max are null (minimum norm). Returns arrays over the ridges (numpy, no JIT).
    """
    lam = np.maximum(np.asarray(lam, dtype=np.float64), 0.0)
    ridges = _ridge_grid(ridges)
    check_rcond(rcond)
    ls = lam[None, :] + ridges[:, None]                                    # (R, r)
    cut = np.where(ridges == 0.0, rcond * (lam.max() if lam.size else 0.0), 0.0)[:, None]
    keep = ls > cut
    F = np.where(keep, -1.0 / np.where(keep, ls, 1.0), 0.0)
    out = _mode_losses(lam, np.asarray(Q, dtype=np.float64), np.asarray(Y, dtype=np.float64), t, F,
                       pop, avg, const)
    out["ridge"] = ridges
    return out


def check_ps(ps, p_max):
    ps = np.atleast_1d(np.asarray(ps))
    if ps.ndim != 1 or ps.size == 0 or not np.issubdtype(ps.dtype, np.integer) or np.any(ps < 1) or np.any(ps > p_max):
        raise ValueError(f"ps must be a non-empty list of integers in [1, {p_max}]")
    return [int(p) for p in ps]


@x64
def statics_vs_p(U, V, t: float, ps, ridges, pop: Optional[Population] = None, rcond: float = 1e-12) -> dict:
    """τ → ∞ ridge losses for the models made of the first p features (p ∈ ps): U[:p,:p], V[:p] (arrays (P, R)).

    Entries of U, V, Ũ, Ṽ depend only on their own rows of W, so the model with the first p random
    features has exactly these leading blocks; one set of matrices at p_max serves the whole ψ_p sweep.
    """
    U = np.asarray(check_finite_array("U", U), dtype=np.float64)
    V = np.asarray(check_finite_array("V", V), dtype=np.float64)
    if V.ndim != 2 or U.shape != (V.shape[0],) * 2:
        raise ValueError(f"U must be (p, p) and V (p, d); got {U.shape} and {V.shape}")
    ps = check_ps(ps, V.shape[0])
    pop = check_population(pop, *V.shape)
    rows = []
    for p in ps:
        lam, Q = scipy.linalg.eigh(U[:p, :p], driver="evd")
        Y = Q.T @ V[:p]
        rows.append(static_losses(lam, Q, Y, t, ridges, None if pop is None else pop.leading(p), rcond=rcond))
    out = {k: np.stack([r[k] for r in rows]) for k in rows[0] if k != "ridge"}
    out["ridge"] = rows[0]["ridge"]
    out["p"] = np.array(ps)
    return out


def lower_envelope(sweep: dict, key: str = "test_loss") -> dict:
    """Lower envelope over the ridge grid of ``sweep[key]`` (P, R): minimum and minimising λ per p."""
    if key not in sweep or "ridge" not in sweep:
        raise ValueError(f"sweep must come from statics_vs_p and contain {key!r}")
    y = np.asarray(sweep[key], dtype=np.float64)
    i = np.nanargmin(y, axis=1)
    return {"value": y[np.arange(y.shape[0]), i], "ridge": np.asarray(sweep["ridge"])[i],
            "at_grid_edge": (i == 0) | (i == y.shape[1] - 1)}


@x64
def early_stopping_vs_p(U, V, t: float, ps, taus, pop: Population, ridge: float = 0.0) -> dict:
    """Minimum over τ ∈ ``taus`` of the test loss of gradient flow (docs/theory.md §3) for the first-p-feature models, p ∈ ps.

    The comparison point for the ridge envelope (early stopping as implicit regularisation).
    Returns per p the minimum, the minimising τ and the whole test-loss curve (P, T).
    """
    U = np.asarray(check_finite_array("U", U), dtype=np.float64)
    V = np.asarray(check_finite_array("V", V), dtype=np.float64)
    if V.ndim != 2 or U.shape != (V.shape[0],) * 2:
        raise ValueError(f"U must be (p, p) and V (p, d); got {U.shape} and {V.shape}")
    ps = check_ps(ps, V.shape[0])
    pop = check_population(pop, *V.shape)
    if pop is None:
        raise ValueError("pop (Ũ, Ṽ) is required: the test loss is what is minimised")
    taus = np.atleast_1d(np.asarray(taus, dtype=np.float64))
    if taus.ndim != 1 or np.any(~np.isfinite(taus)) or np.any(taus < 0):
        raise ValueError("taus must be a 1-d array of finite values >= 0")
    r = check_ridge(ridge)
    d, dt = V.shape[1], delta(t)
    curves = []
    for p in ps:
        lam, Q = scipy.linalg.eigh(U[:p, :p], driver="evd")
        lam = np.maximum(lam, 0.0) + r
        x = (2.0 * dt * d / p) * lam[None, :] * taus[:, None]
        F = np.where(x < 1e-12, -(2.0 * dt * d / p) * taus[:, None] * (1 - 0.5 * x),
                     np.expm1(-x) / np.where(lam > 0, lam, 1.0)[None, :])
        curves.append(_mode_losses(lam - r, Q, Q.T @ V[:p], t, F, pop.leading(p), None, 1.0)["test_loss"])
    curves = np.stack(curves)
    i = np.argmin(curves, axis=1)
    return {"p": np.array(ps), "min_test_loss": curves[np.arange(len(ps)), i], "tau_at_min": taus[i],
            "test_loss": curves, "tau": taus}
