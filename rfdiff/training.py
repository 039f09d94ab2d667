"""Iterative full-batch training of the RF score with optax (docs/theory.md §3, "Iterative training").

The exact dynamics (:mod:`rfdiff.dynamics`) covers gradient descent and gradient flow in closed
form; this module trains ``A`` step by step for the optimisers that have none (momentum, Adam)
and for the noise treatments the closed form does not cover. The time axis is always the
paper's (eq. 10), for every optimiser:

.. math::  \\tau = k\\,\\eta / d^2 ,

k the number of optimiser steps of learning rate η. With ``B = A/√p`` the objectives are

- ``noise="exact"``: the noise-averaged loss
  ``L_train = 1 + (Δ_t/d) Tr(B U Bᵀ) + (2√Δ_t/d) Tr(B V)`` (docs/theory.md §2), gradient
  ``∇_A L = (2Δ_t/(d p)) A U + (2√Δ_t/(d√p)) Vᵀ``;
- ``noise="frozen"``: m noise draws per training point, drawn once from the key,
  ``L_m = (1/(n m d)) Σ_{ν,a} ‖√Δ_t s_A(x_t^{ν,a}) + ξ^{ν,a}‖²``. It is the same quadratic form with
  the finite-m matrices ``U_m = ΦᵀΦ/(nm)``, ``V_m = ΦᵀΞ/(nm)`` and constant ``‖Ξ‖²/(nmd)`` in place
  of 1, which is how it is trained (one p×p product per step instead of nm·p·d);
- ``noise="fresh"``: m new noise draws per point at every step (what the original authors'
  scripts did); the gradient of the batch loss is an unbiased estimate of ∇L_train.

Draws are reproducible and independent of chunking: frozen draw a is
``normal(fold_in(key, a), (n, d))`` (see :func:`rfdiff.finite_m.frozen_noise`); the fresh draws of step k are
``normal(fold_in(key, k), (m n, d))``, row ``a n + ν`` belonging to point ν.

Training runs as one jitted ``lax.scan`` over log-spaced checkpoint segments, each an inner
``fori_loop`` of optimiser steps; the scan covers ``log_chunk`` checkpoints per call (segments
padded with empty ones) so one compiled function serves every η, τ range and key. Metrics are
evaluated exactly at the checkpoints: ``train_loss`` is the noise-averaged L_train from U, V (when
given, whatever the noise mode), ``test_loss``/``score_error``/``emp_distance`` from Ũ, Ṽ, J and
the empirical-score moments (docs/theory.md §2).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.sparse.linalg

from ._util import check_finite_array, check_positive, check_positive_int, warn, x64
from .activations import Activation, get_activation
from .diffusion import delta
from .metrics import quadratic_loss, score_error
from .population import Population, check_population
from .results import Curves, register

OPTIMIZERS = ("gd", "momentum", "adam")
NOISE_MODES = ("exact", "frozen", "fresh")


def _check_unit_interval(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}") from None
    if not (0.0 <= v < 1.0):
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return v


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of one iterative training run (docs/theory.md §3).

    Attributes:
        optimizer: ``"gd"`` (optax.sgd), ``"momentum"`` (optax.sgd with ``momentum``) or
            ``"adam"`` (optax.adam with ``b1``, ``b2``, ``eps``).
        eta: learning rate η; one step advances τ by η/d² for every optimiser.
        tau_max: training time to reach; the run makes ``round(tau_max d²/η)`` steps.
        n_log: number of log-spaced checkpoints in ``[tau_min, tau_max]`` (fewer if several
            round to the same step).
        noise: ``"exact"`` (noise-averaged loss via U, V), ``"frozen"`` (m draws per point, drawn
            once) or ``"fresh"`` (m new draws per point at every step).
        m: noise draws per training point (frozen: in total; fresh: per step).
        momentum: heavy-ball coefficient of ``"momentum"`` (optax convention v ← g + βv, A ← A - ηv).
        b1, b2, eps: Adam's parameters.
        tau_min: first checkpoint; default one step, η/d².
        log_chunk: checkpoints per jitted call (the progress callback runs between calls).
        save_A: also return A at every checkpoint (``A_path``, shape (T, d, p)).
    """

    optimizer: str = "gd"
    eta: float = 1.0
    tau_max: float = 100.0
    n_log: int = 50
    noise: str = "exact"
    m: int = 1
    momentum: float = 0.9
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    tau_min: Optional[float] = None
    log_chunk: int = 16
    save_A: bool = False

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if self.noise not in NOISE_MODES:
            raise ValueError(f"unknown noise {self.noise!r}; valid: {', '.join(NOISE_MODES)}")
        check_positive("eta", self.eta)
        check_positive("tau_max", self.tau_max)
        if self.tau_min is not None:
            check_positive("tau_min", self.tau_min)
            if self.tau_min > self.tau_max:
                raise ValueError(f"tau_min={self.tau_min!r} must not exceed tau_max={self.tau_max!r}")
        check_positive_int("n_log", self.n_log)
        check_positive_int("m", self.m)
        check_positive_int("log_chunk", self.log_chunk)
        _check_unit_interval("momentum", self.momentum)
        _check_unit_interval("b1", self.b1)
        _check_unit_interval("b2", self.b2)
        check_positive("eps", self.eps)
        if not isinstance(self.save_A, bool):
            raise ValueError(f"save_A must be a bool, got {self.save_A!r}")

    def checkpoint_steps(self, d: int) -> np.ndarray:
        """Step counts k of the checkpoints (sorted, unique, ≥ 1); τ = k η/d²."""
        d = check_positive_int("d", d)
        step_tau = self.eta / d**2
        k_max = int(round(self.tau_max / step_tau))
        if k_max < 1:
            raise ValueError(f"tau_max={self.tau_max:g} is shorter than one step (eta/d^2 = {step_tau:g})")
        k_min = 1 if self.tau_min is None else min(max(1, int(round(self.tau_min / step_tau))), k_max)
        grid = np.geomspace(k_min, k_max, self.n_log) if self.n_log > 1 else np.array([k_max])
        return np.unique(np.round(grid).astype(np.int64))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class _Spec(NamedTuple):
    """Static (compile-time) part of a run: everything else is a traced argument."""

    optimizer: str
    fresh: bool
    t: float
    act: Optional[Activation]
    save_A: bool


def _optimizer(name: str, hyper: dict) -> optax.GradientTransformation:
    """The optax transformation; ``hyper`` values may be traced (no recompilation when they change)."""
    import optax        # imported here, not with the package: commands that never train skip its import time
    if name == "gd":
        return optax.sgd(hyper["eta"])
    if name == "momentum":
        return optax.sgd(hyper["eta"], momentum=hyper["momentum"])
    return optax.adam(hyper["eta"], b1=hyper["b1"], b2=hyper["b2"], eps=hyper["eps"])


def _quadratic_grad(A, U, V, t: float):
    """∇_A of the quadratic loss: (2Δ_t/(d p)) A U + (2√Δ_t/(d√p)) Vᵀ (docs/theory.md §3)."""
    d, p = A.shape
    dt = delta(t)
    return (2.0 * dt / (d * p)) * (A @ U) + (2.0 * math.sqrt(dt) / (d * math.sqrt(p))) * V.T


def _fresh_batch_loss(A, W, Xs, xi, t: float, act: Activation):
    """(1/(N d)) Σ_rows ‖√Δ_t s_A(x_t) + ξ‖² for x_t = Xs + √Δ_t ξ (Xs = e^{-t} x, tiled m times)."""
    d, p = A.shape
    sdt = math.sqrt(delta(t))
    phi = act.fn((Xs + sdt * xi) @ W.T / math.sqrt(d))
    r = (sdt / math.sqrt(p)) * (phi @ A.T) + xi
    return jnp.sum(r * r) / (xi.shape[0] * d)


def _metrics(spec: _Spec, data: dict, A) -> dict:
    d, p = A.shape
    B = A / math.sqrt(p)
    out = {}
    if data["U"] is not None:
        out["train_loss"] = quadratic_loss(B, data["U"], data["V"], spec.t)
    if data["c"] is not None:  # frozen objective: constant ‖Ξ‖²/(nmd) in place of 1
        out["objective"] = quadratic_loss(B, data["Uo"], data["Vo"], spec.t) - 1.0 + data["c"]
    pop = data["pop"]
    if pop is not None:
        out["test_loss"] = quadratic_loss(B, pop["U"], pop["V"], spec.t)
        if pop["fisher"] is not None:
            out["score_error"] = score_error(B, pop["U"], pop["V"], spec.t, pop["fisher"])
        if pop["emp_cross"] is not None:
            out["emp_distance"] = (jnp.sum((B @ pop["U"]) * B) - 2.0 * jnp.sum(B * pop["emp_cross"].T)
                                   + pop["emp_sq"]) / d
    if spec.save_A:
        out["A"] = A
    return out


@functools.partial(jax.jit, static_argnames=("spec",))
def _run_chunk(spec: _Spec, hyper: dict, data: dict, carry, seg_steps):
    """Run ``len(seg_steps)`` segments of optimiser steps; metrics after each (one compile per spec/shapes)."""
    import optax
    opt = _optimizer(spec.optimizer, hyper)

    if spec.fresh:
        def grad_fn(A, k):
            xi = jax.random.normal(jax.random.fold_in(data["key"], k), data["Xs"].shape, dtype=A.dtype)
            return jax.grad(_fresh_batch_loss)(A, data["W"], data["Xs"], xi, spec.t, spec.act)
    else:
        def grad_fn(A, k):
            return _quadratic_grad(A, data["Uo"], data["Vo"], spec.t)

    def one_step(_, c):
        A, state, k = c
        updates, state = opt.update(grad_fn(A, k), state, A)
        return optax.apply_updates(A, updates), state, k + 1

    metrics = functools.partial(_metrics, spec, data)
    shapes = jax.eval_shape(metrics, carry[0])

    def skip(_):  # padding segments (0 steps): no metric evaluation (each costs d p² flops)
        return jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), shapes)

    def segment(c, n_steps):
        c = jax.lax.fori_loop(jnp.zeros_like(n_steps), n_steps, one_step, c)
        return c, jax.lax.cond(n_steps > 0, metrics, skip, c[0])

    return jax.lax.scan(segment, carry, seg_steps)


@functools.partial(jax.jit, static_argnames=("act",))
def _frozen_moments(key, W, Xs, sqrt_dt, m, act: Activation):
    """U_m = ΦᵀΦ/(nm), V_m = ΦᵀΞ/(nm), c_m = ‖Ξ‖²/(nmd) over m frozen draws (draw a from fold_in(key, a))."""
    n, d = Xs.shape
    p = W.shape[0]

    def body(a, acc):
        U, V, c = acc
        xi = jax.random.normal(jax.random.fold_in(key, a), Xs.shape, dtype=Xs.dtype)
        phi = act.fn((Xs + sqrt_dt * xi) @ W.T / math.sqrt(d))
        return U + phi.T @ phi, V + phi.T @ xi, c + jnp.sum(xi * xi)

    zero = (jnp.zeros((p, p), Xs.dtype), jnp.zeros((p, d), Xs.dtype), jnp.zeros((), Xs.dtype))
    U, V, c = jax.lax.fori_loop(jnp.zeros_like(m), m, body, zero)
    N = n * m
    return U / N, V / N, c / (N * d)


def gd_stability_limit(U, d: int, t: float) -> float:
    """Largest stable GD step on the exact loss, ``η_max = p d/(Δ_t λ_max(U))`` (docs/theory.md §3)."""
    U = np.asarray(check_finite_array("U", U), dtype=np.float64)
    d = check_positive_int("d", d)
    return U.shape[0] * d / (delta(t) * _lambda_max(U))


def _lambda_max(U) -> float:
    U = np.asarray(U, dtype=np.float64)
    return float(scipy.linalg.eigh(U, eigvals_only=True, subset_by_index=[U.shape[0] - 1] * 2, check_finite=False)[0])


FRESH_MARGIN = 1.15   # the fresh-noise estimate of the limit is 0.91–1.03 of the exact one: warn only beyond this


def _fresh_lambda_max(key, W, Xs, sqrt_dt, act: Activation) -> float:
    """λ_max of ΦᵀΦ/N over m noise draws per point (an estimate of λ_max(U) for the fresh-noise check).

    m = min(8, ⌈2p/n⌉), fewer if Φ would exceed 5·10⁷ entries; measured against the exact λ_max(U) at
    (d, p, n) from (8, 32, 12) to (100, 1600, 800): 0.97–1.10 of it (the one-draw estimate: 1.05–1.34)."""
    n, d = Xs.shape
    p = W.shape[0]
    m = max(1, min(8, math.ceil(2 * p / n), int(5e7 // (n * p))))
    xi = jax.random.normal(jax.random.fold_in(key, 2**31 - 1), (m * n, d), dtype=Xs.dtype)
    phi = np.asarray(act.fn((jnp.tile(Xs, (m, 1)) + sqrt_dt * xi) @ W.T / math.sqrt(d)), dtype=np.float64)
    if min(phi.shape) <= 2048:
        gram = phi @ phi.T if phi.shape[0] <= phi.shape[1] else phi.T @ phi
        top = float(np.linalg.eigvalsh(gram)[-1])
    else:
        top = float(scipy.sparse.linalg.svds(phi, k=1, return_singular_vectors=False)[0]) ** 2
    return top / phi.shape[0]


def _check_stability(config: "TrainConfig", lam_max: Optional[float], p: int, d: int, t: float,
                     estimated: bool = False) -> None:
    """Refuse a gradient-descent step past the stability limit of the quadratic loss (as the exact curves do):
    η < p d/(Δ_t λ_max) for GD, (1 + β) p d/(Δ_t λ_max) with heavy-ball momentum β (docs/theory.md §3.3, §3.7).
    Fresh noise (λ_max estimated from one noise draw) warns instead: its mean dynamics diverge there."""
    if lam_max is None or config.optimizer == "adam":
        return
    limit = p * d / (delta(t) * lam_max) * (1.0 + (config.momentum if config.optimizer == "momentum" else 0.0))
    if config.eta >= limit * (FRESH_MARGIN if estimated else 1.0):
        msg = (f"eta={config.eta:g} is beyond the {config.optimizer} stability limit {'≈ ' if estimated else ''}"
               f"{limit:.6g} (p d/(Δ_t λ_max(U)){' × (1 + momentum)' if config.optimizer == 'momentum' else ''})")
        if config.noise == "fresh":
            warn(msg + ": the iterates diverge")
        else:
            raise ValueError(msg)


def _check_key(key):
    try:
        typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        raw = key.dtype == jnp.uint32 and key.shape == (2,)
    except AttributeError:
        typed = raw = False
    if not (typed and key.ndim == 0) and not raw:
        raise ValueError(f"key must be a single JAX PRNG key (jax.random.key or PRNGKey), got {key!r}")


def _array(name: str, x, shape: tuple) -> jnp.ndarray:
    x = check_finite_array(name, x)
    if x.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {x.shape}")
    return jnp.asarray(x, dtype=jnp.float64)


def _population_arrays(pop: Optional[Population]) -> Optional[dict]:
    """The population as a pytree of float64 JAX arrays (None entries where a moment is absent)."""
    if pop is None:
        return None
    f = lambda a: None if a is None else jnp.asarray(a, dtype=jnp.float64)  # noqa: E731
    return {"U": f(pop.U), "V": f(pop.V), "fisher": f(pop.fisher), "emp_cross": f(pop.emp_cross),
            "emp_sq": f(pop.emp_sq)}


@x64
def train(key: jax.Array, config: TrainConfig, t: float, *, U=None, V=None, W=None, X=None,
          activation="tanh", pop: Optional[Population] = None, A0=None,
          callback: Optional[Callable[[float, float], None]] = None) -> "TrainResult":
    """Train A (d×p) from ``A0`` (default 0) by full-batch ``config.optimizer`` (docs/theory.md §3).

    Args:
        key: PRNG key for the noise draws (frozen: once; fresh: every step). Unused by "exact".
        config: :class:`TrainConfig`.
        t: diffusion time (Δ_t = 1 - e^{-2t}).
        U, V: exact noise-averaged training matrices (p, p), (p, d); required for
            ``noise="exact"``, optional otherwise (they give the logged ``train_loss``).
        W, X: frozen features (p, d) and training points (n, d); required for "frozen"/"fresh".
        activation: name, :class:`Activation` or callable (frozen/fresh).
        pop: :class:`~rfdiff.population.Population`: Ũ, Ṽ for ``test_loss`` (and ``gen_gap`` when U, V
            are given), J for ``score_error``, the empirical-score moments for ``emp_distance``.
        A0: initial weights (d, p); default zeros as in the paper.
        callback: called as ``callback(tau_done, tau_max)`` after each jitted chunk.

    Returns:
        :class:`TrainResult`: ``curves`` (a :class:`~rfdiff.results.Curves` at the checkpoints, with
        the metrics available among ``train_loss``, ``test_loss``, ``gen_gap``, ``score_error``,
        ``emp_distance`` and ``extra["objective"]`` — frozen: the finite-m loss actually
        minimised), ``step`` (T,), the final ``A`` (d, p), and ``A_path`` (T, d, p) if ``config.save_A``.

    Raises:
        ValueError: naming the offending parameter (missing or mis-shaped matrices, non-finite
            entries, t ≤ 0, invalid key, a τ range shorter than one step).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    t = check_positive("t", t)
    _check_key(key)
    p, d = _check_inputs(config, U, V, W, X)
    A0 = jnp.zeros((d, p)) if A0 is None else _array("A0", A0, (d, p))
    data, act = _objective(key, config, t, p, d, U, V, W, X, activation)
    data["pop"] = _population_arrays(check_population(pop, p, d))
    if config.noise == "fresh":
        lam_max = _fresh_lambda_max(key, data["W"], data["Xs"][: np.shape(X)[0]], math.sqrt(delta(t)), act)
    else:
        lam_max = _lambda_max(data["Uo"])
    _check_stability(config, lam_max, p, d, t, estimated=config.noise == "fresh")
    steps = config.checkpoint_steps(d)
    spec = _Spec(config.optimizer, config.noise == "fresh", t, act, config.save_A)
    A, logged = _run_segments(spec, config, data, A0, steps, callback)
    return _result(config, steps, A, logged)


def _check_inputs(config: TrainConfig, U, V, W, X) -> tuple[int, int]:
    """(p, d) from V (or W), after checking that the matrices the noise mode needs are given."""
    given = {"U": U, "V": V, "W": W, "X": X}
    for name in (("U", "V") if config.noise == "exact" else ("W", "X")):
        if given[name] is None:
            raise ValueError(f"{name} is required for noise={config.noise!r}")
    if (U is None) != (V is None):
        raise ValueError("U and V must be given together")
    ref = np.shape(V) if V is not None else np.shape(W)
    if len(ref) != 2:
        raise ValueError(f"{'V' if V is not None else 'W'} must be a (p, d) matrix, got shape {ref}")
    return ref


def _objective(key, config: TrainConfig, t: float, p: int, d: int, U, V, W, X, activation) -> tuple[dict, Optional[Activation]]:
    """The traced inputs of the objective (module docstring): U, V for the logged train loss, and the quadratic
    form actually trained (``Uo``, ``Vo``: exact U, V or the frozen-draw moments) or the fresh-noise batch inputs."""
    data = {"U": None, "V": None, "Uo": None, "Vo": None, "c": None, "W": None, "Xs": None, "key": None}
    if U is not None:
        data["U"], data["V"] = _array("U", U, (p, p)), _array("V", V, (p, d))
    if config.noise == "exact":
        data["Uo"], data["Vo"] = data["U"], data["V"]
        return data, None
    act = get_activation(activation)
    Wj = _array("W", W, (p, d))
    X = check_finite_array("X", X)
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(f"X must have shape (n, d={d}), got {X.shape}")
    Xs = math.exp(-t) * jnp.asarray(X, dtype=jnp.float64)
    if config.noise == "frozen":
        data["Uo"], data["Vo"], data["c"] = _frozen_moments(key, Wj, Xs, math.sqrt(delta(t)), jnp.asarray(config.m), act)
    else:
        data["W"], data["Xs"], data["key"] = Wj, jnp.tile(Xs, (config.m, 1)), key
    return data, act


def _run_segments(spec: _Spec, config: TrainConfig, data: dict, A0, steps: np.ndarray, callback) -> tuple:
    """Optimiser steps between the checkpoints ``steps``, ``config.log_chunk`` segments per jitted call;
    returns the final A and the metrics logged at each checkpoint."""
    d = A0.shape[0]
    segs = np.diff(steps, prepend=0)
    L = config.log_chunk
    segs = np.concatenate([segs, np.zeros((-len(segs)) % L, np.int64)]).reshape(-1, L)
    hyper = {k: float(getattr(config, k)) for k in ("eta", "momentum", "b1", "b2", "eps")}
    state = _optimizer(config.optimizer, hyper).init(A0)
    hyper = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in hyper.items()}
    carry = (A0, state, jnp.zeros((), jnp.int64))
    logs = []
    step_tau = config.eta / d**2
    for chunk in segs:
        carry, out = _run_chunk(spec, hyper, data, carry, jnp.asarray(chunk))
        logs.append(jax.device_get(out))
        if callback is not None:
            callback(float(carry[2]) * step_tau, config.tau_max)
    T = len(steps)
    return np.asarray(carry[0]), {name: np.concatenate([np.asarray(o[name]) for o in logs])[:T] for name in logs[0]}


def _result(config: TrainConfig, steps: np.ndarray, A: np.ndarray, logged: dict) -> "TrainResult":
    """The :class:`TrainResult` of the logged metrics (τ = k η/d²)."""
    A_path = logged.pop("A", None)
    extra = {"objective": logged.pop("objective")} if "objective" in logged else {}
    curves = Curves(steps * (config.eta / A.shape[0]**2), logged.get("train_loss"), logged.get("test_loss"), None,
                    logged.get("score_error"), logged.get("emp_distance"), extra,
                    method=f"iterative {config.optimizer}, {config.noise} noise")
    return TrainResult(curves, steps, A, A_path)


@register
@dataclasses.dataclass(frozen=True, eq=False)
class TrainResult:
    """What :func:`train` returns: the logged ``curves`` (docs/theory.md §3.7), the optimiser ``step`` of
    each checkpoint, the final ``A`` (d, p) and ``A_path`` (T, d, p) when asked for.

    Item access reads a curve (``res["train_loss"]``, ``res["tau"]``) or an attribute (``res["A"]``).
    """

    curves: Curves
    step: np.ndarray
    A: np.ndarray
    A_path: Optional[np.ndarray] = None

    def __getitem__(self, name: str):
        if name in ("step", "A", "A_path"):
            return getattr(self, name)
        return self.curves[name]

    def __contains__(self, name) -> bool:
        return name in ("step", "A") or (name == "A_path" and self.A_path is not None) or name in self.curves


def train_problem(key: jax.Array, config: TrainConfig, problem, A0=None,
                  callback: Optional[Callable[[float, float], None]] = None) -> "TrainResult":
    """:func:`train` on an :class:`rfdiff.model.RFProblem` (all metrics available)."""
    return train(key, config, problem.config.t, U=problem.train.U, V=problem.train.V, W=problem.W,
                 X=problem.X, activation=problem.config.activation, pop=problem.population, A0=A0, callback=callback)
