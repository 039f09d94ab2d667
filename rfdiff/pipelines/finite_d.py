"""The finite-d train-loss theory against the exact model: the ingredient table of docs/theory.md §8.5.

For each rung (d, ψ_p, ψ_n, t) and seed, on one training set: the exact model's train loss
(Mehler U, Stein V, gradient flow: :func:`rfdiff.matrices.train_matrices`,
:func:`rfdiff.dynamics.exact_dynamics`) and the conditional kernel deterministic equivalent of
docs/theory.md §8 (:func:`rfdiff.theory.finite_d.train_loss_de`) with one nugget and with the
nugget resolved over neuron norms; per rung, the d → ∞ theory (Theorem 3.1, docs/theory.md §4.6)
and its norm-spread correction (§4.5). All on the τ grid :data:`TAUS`.

* :func:`run_point` — a :class:`PointResult` for a :class:`Point` (one rung, one seed), cached one
  JSON file per point in an optional folder (nothing is recomputed that is already there).
* :func:`summarize` / :func:`ingredient_table` — a :class:`RungSummary` per rung: seed means of
  every curve, the seed standard error of the exact L_train(∞), and the two theory curves.

The draws are numpy's, not :func:`rfdiff.model.draw`'s: ``W`` then ``X`` (both standard normal)
from ``numpy.random.default_rng(seed)``, so that the table of docs/finite_size.md is reproduced
number for number.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Optional, Sequence

import numpy as np

from . import _checks

__all__ = ["TAUS", "INGREDIENT_RUNGS", "Rung", "Point", "PointResult", "RungSummary", "draw", "run_point", "theory_curves",
           "summarize", "ingredient_table"]

TAUS = (10.0, 100.0, 1e3, 1e4, 1e5, math.inf)
"""The τ grid of every curve of the table (the last is τ → ∞)."""

NEURON_TYPES = 16
"""Neuron-norm nugget types of the resolved equivalent (docs/theory.md §8.2)."""


@dataclasses.dataclass(frozen=True)
class Rung:
    """One size of the table: d, ψ_p = p/d, ψ_n = n/d and the diffusion time t (p, n rounded to integers)."""

    d: int
    psi_p: float
    psi_n: float
    t: float

    def __post_init__(self):
        object.__setattr__(self, "d", _checks.integer("d", self.d, 2))
        object.__setattr__(self, "psi_p", _checks.positive("psi_p", self.psi_p))
        object.__setattr__(self, "psi_n", _checks.positive("psi_n", self.psi_n))
        object.__setattr__(self, "t", _checks.positive("t", self.t))
        for name, psi in (("psi_p", self.psi_p), ("psi_n", self.psi_n)):
            if _checks.size(psi, self.d) < 1:
                raise ValueError(f"{name} must give {name[-1]} = round({name} * d) >= 1, got {psi!r} at d = {self.d}")

    @property
    def p(self) -> int:
        return _checks.size(self.psi_p, self.d)

    @property
    def n(self) -> int:
        return _checks.size(self.psi_n, self.d)


@dataclasses.dataclass(frozen=True)
class Point:
    """One rung and one seed: the unit of the table (one training set)."""

    rung: Rung
    seed: int

    def __post_init__(self):
        if not isinstance(self.rung, Rung):
            raise ValueError(f"rung must be a Rung, got {self.rung!r}")
        object.__setattr__(self, "seed", _checks.seed(self.seed))

    def cache_name(self) -> str:
        """The point's cache file name (the same as the command's earlier cache, so old caches stay valid)."""
        r = self.rung
        return f"finite_d_{r.d}_{r.psi_p:g}_{r.psi_n:g}_{r.t:g}_{self.seed}.json"


@dataclasses.dataclass(frozen=True)
class PointResult:
    """Train-loss curves of one point on ``taus``: the exact model and the §8 equivalent (one nugget, neuron-norm types)."""

    point: Point
    taus: tuple
    exact: tuple
    de_single: tuple
    de_types: tuple


@dataclasses.dataclass(frozen=True)
class RungSummary:
    """Seed means of one rung's curves on ``taus`` and the theory curves (docs/theory.md §4.5–4.6, §8).

    ``exact``, ``de_single``, ``de_types``: seed means of :class:`PointResult`'s curves per τ (the §8
    ones over the ``de_seeds`` seeds where they were computed, NaN where none was: see ``max_dim`` of :func:`run_point`);
    ``exact_inf_se``: seed standard error of the exact L_train(∞) (nan with one seed); ``theory``:
    Theorem 3.1 (d → ∞); ``norm_corrected``: with the norm spread of the training points (§4.5).
    """

    rung: Rung
    seeds: int
    taus: tuple
    exact: tuple
    exact_inf_se: float
    theory: tuple
    norm_corrected: tuple
    de_single: tuple
    de_types: tuple
    de_seeds: int = 0
    """Seeds whose §8 L_train(∞) was computed (the §8 means are over these; NaN if none, docs/theory.md §8.6)."""
    exact_on_de_seeds: float = math.nan
    """The exact L_train(∞) averaged over those same seeds (the like-for-like reference of the §8 columns)."""


def draw(point: Point):
    """``(W, X)`` of a point: ``W`` (p × d) then ``X`` (n × d), standard normal from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(point.seed)
    W = rng.standard_normal((point.rung.p, point.rung.d))
    X = rng.standard_normal((point.rung.n, point.rung.d))
    return W, X


def _load(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        out = json.load(f)
    if "finite_d" in out:                       # files written before the nugget types existed
        out["de_single"] = out.pop("finite_d")
    if out.get("taus", list(TAUS)) != list(TAUS):
        return {}
    return out


def run_point(point: Point, cache: Optional[str] = None, max_dim: Optional[int] = None,
              max_dim_inf: Optional[int] = None) -> PointResult:
    """Exact and §8 train-loss curves of one point on :data:`TAUS` (docs/theory.md §8.3, §8.5).

    exact: L_train(τ) of the gradient flow on the exact U, V of the drawn W, X (:func:`draw`);
    de_single: the conditional kernel equivalent with one nugget η (neuron norms at r = 1);
    de_types: the same with η resolved over :data:`NEURON_TYPES` neuron-norm types.
    ``cache``: a folder holding one JSON file per point (:meth:`Point.cache_name`); what is there is not recomputed.
    ``max_dim``: the largest kernel size n(d+1) whose §8 curves are computed (default
    :data:`rfdiff.theory.finite_d.MAX_DIM_CURVES`); up to ``max_dim_inf`` (default
    :data:`rfdiff.theory.finite_d.MAX_DIM_INF`) only τ → ∞ is (:func:`rfdiff.theory.finite_d.train_loss_inf_de`,
    the other τ NaN); above both, the §8 values are NaN and nothing of them is cached.
    """
    if not isinstance(point, Point):
        raise ValueError(f"point must be a Point, got {point!r}")
    if cache is not None and not isinstance(cache, (str, os.PathLike)):
        raise ValueError(f"cache must be a folder path or None, got {cache!r}")
    from ..theory.finite_d import MAX_DIM_CURVES, MAX_DIM_INF
    max_dim = MAX_DIM_CURVES if max_dim is None else _checks.integer("max_dim", max_dim, 0)
    max_dim_inf = MAX_DIM_INF if max_dim_inf is None else _checks.integer("max_dim_inf", max_dim_inf, 0)
    from ..dynamics import exact_dynamics
    from ..matrices import train_matrices
    from ..theory.finite_d import conditional_kernel, nugget, train_loss_de, train_loss_inf_de
    path = os.path.join(cache, point.cache_name()) if cache is not None else None
    out = _load(path) if path is not None else {}
    before = dict(out)
    r = point.rung
    W, X = draw(point)
    taus = np.array(TAUS)
    if "exact" not in out:
        fm = train_matrices(W, X, r.t)
        out["exact"] = np.asarray(exact_dynamics(np.asarray(fm.U), np.asarray(fm.V), r.t).curves(taus).train_loss).tolist()
    if ("de_single" not in out or "de_types" not in out) and r.n * (r.d + 1) <= max_dim:
        kc = conditional_kernel(X, r.t, neuron_types=NEURON_TYPES)
        out["de_types"] = train_loss_de(taus, kc, r.p).tolist()
        eta, w = nugget(X, r.t, neuron_types=0)
        out["de_single"] = train_loss_de(taus, dataclasses.replace(kc, eta=eta, eta_weights=w), r.p).tolist()
    elif ("de_single" not in out or "de_types" not in out) and r.n * (r.d + 1) <= max_dim_inf:
        one, typ = train_loss_inf_de(X, r.t, r.p, neuron_types=(0, NEURON_TYPES))
        out["de_single"] = [math.nan] * (len(TAUS) - 1) + [one]
        out["de_types"] = [math.nan] * (len(TAUS) - 1) + [typ]
    out["taus"] = list(TAUS)
    if path is not None and out != before:
        from ..io import atomic_write
        os.makedirs(cache, exist_ok=True)
        text = json.dumps(out)
        atomic_write(path, lambda fh: fh.write(text.encode()), overwrite=True)
    nan = (math.nan,) * len(TAUS)
    return PointResult(point, TAUS, tuple(out["exact"]), tuple(out.get("de_single", nan)), tuple(out.get("de_types", nan)))


def theory_curves(rung: Rung):
    """``(theory, norm_corrected)``: Theorem 3.1's train loss on :data:`TAUS`, and with the norm spread at d.

    docs/theory.md §4.6 (d → ∞) and §4.5 (the finite-d sample-norm correction), tanh activation.
    """
    from ..theory import predict
    taus = np.array(TAUS)
    inf = predict("tanh", rung.t, rung.psi_p, rung.psi_n, taus=taus, test_loss=False)
    nc = predict("tanh", rung.t, rung.psi_p, rung.psi_n, taus=taus, test_loss=False, d=rung.d)
    return np.asarray(inf.curves.train_loss), np.asarray(nc.curves.train_loss)


def summarize(rung: Rung, results: Sequence[PointResult]) -> RungSummary:
    """A rung's :class:`RungSummary` from its points' results (docs/theory.md §8.5): seed means per τ, s.e. of L_train(∞)."""
    results = tuple(results)
    if not results or any(not isinstance(r, PointResult) or r.point.rung != rung for r in results):
        raise ValueError(f"results must be a non-empty sequence of PointResults of rung {rung!r}")
    ex = np.array([r.exact for r in results])
    one = np.array([r.de_single for r in results])
    typ = np.array([r.de_types for r in results])
    k = range(len(TAUS))
    se = ex[:, -1].std(ddof=1) / math.sqrt(len(results)) if len(results) > 1 else math.nan
    inf, nc = theory_curves(rung)
    done = np.isfinite(typ[:, -1])

    def mean(a, i):
        v = a[done, i]
        return float(v.mean()) if v.size else math.nan
    return RungSummary(rung, len(results), TAUS, tuple(float(ex[:, i].mean()) for i in k), float(se),
                       tuple(float(x) for x in inf), tuple(float(x) for x in nc),
                       tuple(mean(one, i) for i in k), tuple(mean(typ, i) for i in k), int(done.sum()),
                       mean(ex, len(TAUS) - 1))


def ingredient_table(rungs: Sequence[Rung], seeds: int, cache: Optional[str] = None, max_dim: Optional[int] = None,
                     max_dim_inf: Optional[int] = None) -> tuple:
    """A :class:`RungSummary` per rung over seeds 0 … ``seeds`` − 1 (:func:`run_point`, cached in ``cache``;
    ``max_dim``, ``max_dim_inf``: the §8 size limits of :func:`run_point`)."""
    rungs = _checks.sequence("rungs", rungs, _rung)
    seeds = _checks.integer("seeds", seeds, 1)
    return tuple(summarize(r, [run_point(Point(r, s), cache, max_dim, max_dim_inf) for s in range(seeds)])
                 for r in rungs)


INGREDIENT_RUNGS = (Rung(32, 64.0, 4.0, 0.1), Rung(64, 64.0, 4.0, 0.1), Rung(100, 64.0, 4.0, 0.1))
"""The rungs of the ingredient table of docs/finite_size.md (ψ_p = 64, ψ_n = 4, t = 0.1; d = 32, 64, 100)."""


def _rung(name, value) -> Rung:
    if not isinstance(value, Rung):
        raise ValueError(f"{name} must hold Rungs, got {value!r}")
    return value
