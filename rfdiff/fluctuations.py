"""Fresh-noise gradient descent around its mean trajectory: the fluctuation floor (docs/theory.md §7.2).

The authors' trainer draws one fresh noise per training point at every step:
``A_{k+1} = A_k − η (∇L(A_k) + ζ_k)`` with E ζ_k = 0. The loss is quadratic in A, so the mean
iterate follows exact gradient descent (:mod:`rfdiff.dynamics`) and the deviation δA = A − E A
obeys ``δA_{k+1} = δA_k (I − r U) − η ζ_k``, r = 2ηΔ_t/(d p). In the eigenbasis of U
(U = Q diag(λ) Qᵀ), with ``S = Qᵀ Σ_ζ Q`` the gradient-noise covariance (summed over the d
output rows), the covariance of the iterates after k steps is

    C_ij(k) = η² S_ij (1 − a_ij^k)/(1 − a_ij),    a_ij = (1 − rλ_i)(1 − rλ_j),

and the excess of the noise-averaged losses over the mean trajectory is

    ΔL_train = (Δ_t/(d p)) Σ_i λ_i C_ii,    ΔL_test = (Δ_t/(d p)) Σ_ij C_ij (QᵀŨQ)_ji,    ΔE_score = ΔL_test/Δ_t.

Σ_ζ depends on A; it is estimated by Monte Carlo over fresh draws at the mean iterate of each
checkpoint (quasi-static: the transient factor uses the step count reached there), or along the
mean trajectory's history, ``C_ij(k) = η² Σ_{j<k} a_ij^{k−1−j} S_ij(Ā_j)``, with S at log-spaced
steps (:func:`predict_floor_history`): the noise falls as A trains, so the quasi-static form is
low over the first steps.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ._util import check_positive, check_positive_int
from .activations import get_activation
from .diffusion import delta
from .dynamics import congruence
from .results import register

__all__ = ["fresh_gradients", "noise_covariance", "excess_losses", "FloorPrediction", "predict_floor",
           "history_nodes", "excess_losses_history", "predict_floor_history"]


@functools.partial(jax.jit, static_argnames=("act",))
def _grads(keys, A, W, Xs, t, act):
    d, p = A.shape
    sdt = jnp.sqrt(-jnp.expm1(-2.0 * t))

    def one(key):
        xi = jax.random.normal(key, Xs.shape, dtype=A.dtype)
        phi = act.fn((Xs + sdt * xi) @ W.T / math.sqrt(d))
        r = (sdt / math.sqrt(p)) * (phi @ A.T) + xi                        # residuals (n, d)
        return (2.0 * sdt / (Xs.shape[0] * d * math.sqrt(p))) * (r.T @ phi)  # ∇_A of the batch loss

    return jax.lax.map(one, keys)


def fresh_gradients(key, A, W, X, t: float, activation="tanh", draws: int = 64) -> np.ndarray:
    """``draws`` full-batch gradients ∇_A L̂ (draws, d, p), each with one fresh noise per training point."""
    draws = check_positive_int("draws", draws)
    t = check_positive("t", t)
    with jax.enable_x64(True):
        Xs = math.exp(-t) * jnp.asarray(X, dtype=jnp.float64)
        g = _grads(jax.random.split(key, draws), jnp.asarray(A, dtype=jnp.float64),
                   jnp.asarray(W, dtype=jnp.float64), Xs, float(t), get_activation(activation))
        return np.asarray(g)


def noise_covariance(grads: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """``S = Qᵀ Σ_ζ Q``: covariance of the gradient noise in U's eigenbasis, summed over output rows (p, p)."""
    g = np.asarray(grads, dtype=np.float64)
    z = g - g.mean(axis=0, keepdims=True)
    Z = (z @ Q).reshape(-1, Q.shape[1])                          # (draws·d, p)
    return Z.T @ Z / max(g.shape[0] - 1, 1)


def excess_losses(S: np.ndarray, lam: np.ndarray, QtUpQ: np.ndarray, eta: float, steps: int, d: int,
                  t: float) -> tuple[float, float]:
    """``(ΔL_train, ΔL_test)`` of fresh-noise GD after ``steps`` steps at step η (module docstring)."""
    lam = np.asarray(lam, dtype=np.float64)
    p = lam.size
    dt = delta(t)
    r = 2.0 * eta * dt / (d * p)
    a = np.outer(1.0 - r * lam, 1.0 - r * lam)
    # Σ_{k<steps} a^k = (1 − a^steps)/(1 − a); a < 0 (overshooting but stable modes, 1 < rλ < 2) keeps its sign
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        geo = np.where(np.abs(1.0 - a) > 1e-14, (1.0 - np.power(a, steps)) / (1.0 - a), float(steps))
    C = eta**2 * S * geo
    return float(dt / (d * p) * np.sum(lam * np.diag(C))), float(dt / (d * p) * np.sum(C * QtUpQ))


@register
@dataclasses.dataclass(frozen=True, eq=False)
class FloorPrediction:
    """Predicted excess of fresh-noise GD over its mean trajectory at checkpoints ``tau`` (docs/theory.md §7.2)."""

    tau: np.ndarray
    steps: np.ndarray
    train_excess: np.ndarray
    test_excess: np.ndarray
    score_excess: np.ndarray
    draws: int


def _floor_setup(dyn, U_pop, W, eta, draws):
    """Checked η and draws, and what both floor predictions read from the problem: t, d, U's eigenbasis Q and
    eigenvalues λ, and QᵀŨQ."""
    eta = check_positive("eta", eta)
    draws = check_positive_int("draws", draws)
    Q, lam = np.asarray(dyn.Q), np.asarray(dyn.lam)
    return eta, draws, float(dyn.t), int(np.shape(W)[1]), Q, lam, congruence(U_pop, Q)


def predict_floor(key, dyn, U_pop, W, X, tau, steps, eta: float, draws: int = 64,
                  activation="tanh") -> FloorPrediction:
    """The predicted fluctuation floor of fresh-noise GD at checkpoints (τ_i, k_i) (module docstring, docs/theory.md §7.2).

    At each checkpoint i the gradient-noise covariance ``S = Qᵀ Σ_ζ Q`` is estimated from ``draws``
    fresh-noise gradients at the mean iterate ``dyn.A(τ_i, η)`` (PRNG key ``fold_in(key, i)``) and
    turned into ``ΔL_train``, ``ΔL_test`` after k_i steps by :func:`excess_losses`;
    ``ΔE_score = ΔL_test/Δ_t``. ``dyn`` is the :class:`rfdiff.dynamics.ExactDynamics` of the problem
    (eigenbasis Q, λ of U), ``U_pop`` its population matrix Ũ, ``W``, ``X`` its draws.
    """
    tau = np.atleast_1d(np.asarray(tau, dtype=np.float64))
    steps = np.atleast_1d(np.asarray(steps))
    if tau.shape != steps.shape or tau.ndim != 1 or tau.size == 0:
        raise ValueError(f"tau and steps must be non-empty 1-d arrays of one length, got shapes {tau.shape}, "
                         f"{steps.shape}")
    eta, draws, t, d, Q, lam, QUQ = _floor_setup(dyn, U_pop, W, eta, draws)
    rows = []
    for i, (tau_i, k_i) in enumerate(zip(tau, steps)):
        A = np.asarray(dyn.A(float(tau_i), eta=eta))
        with jax.enable_x64(True):
            key_i = jax.random.fold_in(key, i)
        g = fresh_gradients(key_i, A, W, X, t, activation, draws)
        rows.append(excess_losses(noise_covariance(g, Q), lam, QUQ, eta, int(k_i), d, t))
    tr, te = np.array(rows).T
    return FloorPrediction(tau, steps, tr, te, te / delta(t), draws)


def history_nodes(steps_max: int, per_decade: int = 8) -> np.ndarray:
    """Steps at which the noise covariance is evaluated along the history: 0 and ``per_decade`` log-spaced steps
    per decade from 1 to ``steps_max`` (docs/theory.md §7.2)."""
    k = check_positive_int("steps_max", int(steps_max))
    per_decade = check_positive_int("per_decade", per_decade)
    m = int(math.ceil(per_decade * math.log10(k))) + 1 if k > 1 else 1
    return np.unique(np.concatenate([[0], np.round(np.geomspace(1, k, m)).astype(np.int64)]))


def _segments(nodes: np.ndarray) -> list:
    """Steps [start, end) that take the noise covariance of each node: the nearest node in log scale."""
    out, start = [], 0
    for i in range(nodes.size):
        if i + 1 < nodes.size:
            lo, hi = int(nodes[i]), int(nodes[i + 1])
            end = min(max(int(round(math.sqrt(lo * hi))) if lo > 0 else 1, lo + 1), hi)
        else:
            end = None
        out.append((start, end))
        start = end
    return out


def _decay_sums(one_minus_a: np.ndarray, start: int, end: int, k: int) -> np.ndarray:
    """``Σ_{j=start}^{end−1} a^{k−1−j}`` elementwise, a = 1 − one_minus_a (end ≤ k)."""
    a = 1.0 - one_minus_a
    length, lag = end - start, k - end
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        pos = a > 0
        la = np.log(np.where(pos, a, 1.0))
        aL = np.where(pos, np.exp(length * la), np.power(a, length))
        geo = np.where(np.abs(one_minus_a) > 1e-14,
                       np.where(pos, -np.expm1(length * la), 1.0 - aL) / one_minus_a, float(length))
        lagf = np.where(pos, np.exp(lag * la), np.power(a, lag))
    return lagf * geo


def _history_terms(S: np.ndarray, seg: tuple, lam: np.ndarray, QtUpQ: np.ndarray, eta: float, steps: np.ndarray,
                   d: int, t: float) -> np.ndarray:
    """Contribution of one node's covariance S over the steps ``seg`` to (ΔL_train, ΔL_test) at each of ``steps``."""
    p = lam.size
    dt = delta(t)
    r = 2.0 * eta * dt / (d * p)
    one_minus_a = r * np.add.outer(lam, lam) - r * r * np.outer(lam, lam)
    out = np.zeros((steps.size, 2))
    start, end = seg
    for c, k in enumerate(steps):
        if start >= k:
            continue
        e = int(k) if end is None else min(end, int(k))
        C = eta**2 * S * _decay_sums(one_minus_a, start, e, int(k))
        out[c] = dt / (d * p) * np.sum(lam * np.diag(C)), dt / (d * p) * np.sum(C * QtUpQ)
    return out


def excess_losses_history(S_nodes, nodes, lam: np.ndarray, QtUpQ: np.ndarray, eta: float, steps, d: int,
                          t: float) -> np.ndarray:
    """``(ΔL_train, ΔL_test)`` after each of ``steps`` with the noise covariance along the history (docs/theory.md §7.2).

    The noise of step j has the covariance ``S(j)`` of the mean iterate at step j, taken from the node
    nearest to j in log scale (``S_nodes[i]`` at step ``nodes[i]``, nodes increasing from 0; beyond the
    last node its S). Then ``C_il(k) = η² Σ_{j<k} a_il^{k−1−j} S_il(j)`` and the excesses follow as for
    :func:`excess_losses`. With a node at every step this is exact; with one S it is :func:`excess_losses`.
    Returns an array (len(steps), 2).
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    if nodes.ndim != 1 or nodes.size == 0 or nodes[0] != 0 or np.any(np.diff(nodes) <= 0):
        raise ValueError(f"nodes must be increasing steps starting at 0, got {nodes!r}")
    if len(S_nodes) != nodes.size:
        raise ValueError(f"S_nodes must hold one covariance per node ({nodes.size}), got {len(S_nodes)}")
    steps = np.atleast_1d(np.asarray(steps, dtype=np.int64))
    lam = np.asarray(lam, dtype=np.float64)
    total = np.zeros((steps.size, 2))
    for S, seg in zip(S_nodes, _segments(nodes)):
        total += _history_terms(np.asarray(S, dtype=np.float64), seg, lam, QtUpQ, eta, steps, d, t)
    return total


def predict_floor_history(key, dyn, U_pop, W, X, tau, steps, eta: float, draws: int = 64, activation="tanh",
                          per_decade: int = 8) -> FloorPrediction:
    """The fluctuation floor with the noise covariance evaluated along the mean trajectory's history (docs/theory.md §7.2).

    As :func:`predict_floor` (same arguments), but each step's noise covariance is that of the mean
    iterate at that step (:func:`excess_losses_history`), estimated at the nodes
    :func:`history_nodes` (``per_decade`` per decade up to the last checkpoint; node i from ``draws``
    gradients with key ``fold_in(key, i)``), instead of the checkpoint's own for every step.
    The quasi-static form is low over the first steps, where the noise falls as A trains.
    """
    tau = np.atleast_1d(np.asarray(tau, dtype=np.float64))
    steps = np.atleast_1d(np.asarray(steps)).astype(np.int64)
    if tau.shape != steps.shape or tau.ndim != 1 or tau.size == 0 or np.any(steps < 1):
        raise ValueError(f"tau and steps must be non-empty 1-d arrays of one length with steps >= 1, got shapes "
                         f"{tau.shape}, {steps.shape}")
    eta, draws, t, d, Q, lam, QUQ = _floor_setup(dyn, U_pop, W, eta, draws)
    nodes = history_nodes(int(steps.max()), per_decade)
    total = np.zeros((steps.size, 2))
    for i, (node, seg) in enumerate(zip(nodes, _segments(nodes))):
        A = np.asarray(dyn.A(float(node) * eta / d**2, eta=eta))
        with jax.enable_x64(True):
            key_i = jax.random.fold_in(key, i)
        S = noise_covariance(fresh_gradients(key_i, A, W, X, t, activation, draws), Q)
        total += _history_terms(S, seg, lam, QUQ, eta, steps, d, t)
    tr, te = total.T
    return FloorPrediction(tau, steps, tr, te, te / delta(t), draws)
