"""Multi-device U, V: the Mehler products sharded over the p (feature) axis with ``jax.sharding``.

Each device computes its own rows of U = Σ_k (C^k/k!) ∘ (G_k Gw_kᵀ) (docs/theory.md §2); the column-side
factors (G, F: O(p·n), O(p·d)) are replicated, the p×p result never sits on one device. On CPU
the path is exercised with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ._util import check_finite_array, check_positive, x64
from .activations import get_activation
from .diffusion import delta
from .matrices import FeatureMoments, MehlerPlan, mehler_plan, mehler_rows_device


def row_mesh(devices: Optional[Sequence] = None) -> Mesh:
    """A 1-d device mesh whose axis ``"p"`` shards the feature dimension."""
    devs = np.array(devices if devices is not None else jax.devices())
    return Mesh(devs, ("p",))


@x64
def sharded_moment(plan: MehlerPlan, mesh: Mesh) -> jax.Array:
    """The dense U of a Mehler plan as one (p, p) array sharded by rows over ``mesh``."""
    p, ndev = plan.p, mesh.devices.size
    if p % ndev:
        raise ValueError(f"p={p} must be divisible by the number of devices ({ndev})")
    rows = NamedSharding(mesh, P("p", None))
    rows3 = NamedSharding(mesh, P(None, "p", None))
    rep = NamedSharding(mesh, P())
    G, Gw, F = (jax.device_put(jnp.asarray(a), rep) for a in (plan.G, plan.G * plan.w, plan.F))
    Fb, Gb = jax.device_put(jnp.asarray(plan.F), rows), jax.device_put(jnp.asarray(plan.G), rows3)
    diag = jax.device_put(jnp.asarray(plan.diag), NamedSharding(mesh, P("p")))

    @jax.jit
    def build(G, Gw, Fb, F, Gb, diag):
        acc = mehler_rows_device(G, Gw, Fb, F, Gb)
        acc = jax.lax.with_sharding_constraint(acc, rows)
        eye = jnp.arange(p)
        return acc.at[eye, eye].set(diag)

    return build(G, Gw, Fb, F, Gb, diag)


@x64
def sharded_train_matrices(W, X, t: float, mesh: Mesh, activation="tanh", tol: float = 1e-8,
                           max_order: int = 12, quad_order: Optional[int] = None) -> FeatureMoments:
    """:func:`rfdiff.matrices.train_matrices` with U sharded over ``mesh`` (rows of U per device)."""
    W = jnp.asarray(check_finite_array("W", W), dtype=jnp.float64)
    X = jnp.asarray(check_finite_array("X", X), dtype=jnp.float64)
    t = check_positive("t", t)
    act = get_activation(activation)
    p, d = W.shape
    n = X.shape[0]
    dt = delta(t)
    M = math.exp(-t) * (W @ X.T) / math.sqrt(d)
    F = math.sqrt(dt) * W / math.sqrt(d)
    plan = mehler_plan(act, np.asarray(M), np.full(n, 1.0 / n), np.asarray(F), tol, max_order, quad_order)
    U = sharded_moment(plan, mesh)
    V = math.sqrt(dt) * plan.g1[:, None] * W / math.sqrt(d)
    info = {"method": "mehler (sharded)", **plan.info, "devices": int(mesh.devices.size), "tol": tol,
            "converged": bool(plan.error < tol)}
    return FeatureMoments(U, V, plan.order, plan.error, info)
