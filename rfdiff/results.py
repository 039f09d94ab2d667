"""Typed results shared by every route, simulation and theory alike, and their JSON + NPZ form.

One quantity has one name wherever it comes from: the exact dense route, the Lanczos route,
ridge, finite m, classes, iterative training and the theory all return :class:`Curves`; a
spectrum is a :class:`Spectrum` (a discrete measure: exact eigenvalues, Ritz values or the
theory's quadrature nodes); timescales are :class:`Timescales`, extracted from curves by one
rule (:mod:`rfdiff.timescales`, docs/theory.md §6). :func:`save` writes any of these (or any
frozen dataclass made of them, numbers, strings, arrays, lists and dicts) as ``stem.json`` +
``stem.npz`` atomically; :func:`load` reads it back into the same types.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import math
import zipfile
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from .io import atomic_write, to_jsonable

__all__ = ["Curves", "Spectrum", "Timescales", "Thresholds", "Prediction", "CorruptResult", "register", "save", "load",
           "to_payload", "from_payload"]

CURVE_FIELDS = ("train_loss", "test_loss", "gen_gap", "score_error", "emp_distance")


class CorruptResult(ValueError):
    """A saved result that cannot be read back (truncated, edited, or of an unknown type)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Curves:
    """Losses along the training time τ (docs/theory.md §2–3); the last axis of every array is τ.

    ``train_loss`` (noise-averaged), ``test_loss``, ``gen_gap = test − train``, ``score_error``
    ``E_score`` and ``emp_distance`` (distance to the empirical score); absent ones are None.
    Per-class curves carry a leading class axis. ``extra`` holds route-specific curves
    (e.g. ``objective`` and ``weight_norm`` for ridge, ``train_loss_frozen`` for finite m).
    ``method`` says how they were computed.
    """

    tau: np.ndarray
    train_loss: Optional[np.ndarray] = None
    test_loss: Optional[np.ndarray] = None
    gen_gap: Optional[np.ndarray] = None
    score_error: Optional[np.ndarray] = None
    emp_distance: Optional[np.ndarray] = None
    extra: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    method: str = ""

    def __post_init__(self):
        tau = np.atleast_1d(np.asarray(self.tau, dtype=np.float64))
        object.__setattr__(self, "tau", tau)
        for name in CURVE_FIELDS:
            v = getattr(self, name)
            if v is not None:
                v = np.asarray(v, dtype=np.float64)
                if v.shape[-1:] != tau.shape:
                    raise ValueError(f"Curves.{name} has shape {v.shape}, its last axis must match tau {tau.shape}")
                object.__setattr__(self, name, v)
        if self.gen_gap is None and self.train_loss is not None and self.test_loss is not None:
            object.__setattr__(self, "gen_gap", self.test_loss - self.train_loss)
        object.__setattr__(self, "extra", {k: np.asarray(v, dtype=np.float64) for k, v in dict(self.extra).items()})

    def get(self, name: str, default=None) -> Optional[np.ndarray]:
        """A curve by name, looked up among the standard fields and then ``extra``."""
        if name in CURVE_FIELDS or name == "tau":
            v = getattr(self, name)
            return default if v is None else v
        return self.extra.get(name, default)

    def __getitem__(self, name: str) -> np.ndarray:
        v = self.get(name)
        if v is None:
            raise KeyError(name)
        return v

    def __contains__(self, name) -> bool:
        return self.get(name) is not None

    def keys(self) -> list[str]:
        """Names of the curves present (``tau`` first)."""
        return list(self.as_dict())

    def __iter__(self):
        return iter(self.keys())

    def items(self):
        """``(name, array)`` pairs of :meth:`as_dict`."""
        return self.as_dict().items()

    def values(self):
        return self.as_dict().values()

    def as_dict(self) -> dict:
        """``{name: array}`` of every curve present (``tau`` included)."""
        out = {"tau": self.tau}
        out.update({k: getattr(self, k) for k in CURVE_FIELDS if getattr(self, k) is not None})
        out.update(self.extra)
        return out

    def final(self) -> dict:
        """Each curve's value at the last τ of the grid."""
        return {k: float(np.asarray(v)[..., -1]) if np.ndim(v) == 1 else np.asarray(v)[..., -1].tolist()
                for k, v in self.as_dict().items() if k != "tau"}


@dataclasses.dataclass(frozen=True, eq=False)
class Spectrum:
    """A spectral measure of U: ``nodes`` with probability ``weights`` (sum 1), docs/theory.md §6.2.

    Exact eigenvalues have weights 1/p; stochastic Lanczos quadrature gives Ritz values and
    weights; the theory gives quadrature nodes of its density with their masses plus the atom at
    s_t². :meth:`quantile` is the one rule both sides use (e.g. for the memorisation edge).
    """

    nodes: np.ndarray
    weights: np.ndarray
    method: str = ""

    def __post_init__(self):
        x = np.atleast_1d(np.asarray(self.nodes, dtype=np.float64))
        w = np.atleast_1d(np.asarray(self.weights, dtype=np.float64))
        if x.shape != w.shape or x.ndim != 1:
            raise ValueError(f"Spectrum nodes {x.shape} and weights {w.shape} must be 1-d of the same length")
        order = np.argsort(x, kind="stable")
        object.__setattr__(self, "nodes", x[order])
        object.__setattr__(self, "weights", w[order])

    @classmethod
    def from_eigenvalues(cls, eigenvalues, method: str = "exact eigenvalues") -> "Spectrum":
        lam = np.asarray(eigenvalues, dtype=np.float64).ravel()
        return cls(lam, np.full(lam.size, 1.0 / max(lam.size, 1)), method)

    def midpoint_cdf(self) -> np.ndarray:
        """CDF at each node counting half of the node's own weight: ``F_j = Σ_{i<j} w_i + w_j/2``."""
        return np.cumsum(self.weights) - 0.5 * self.weights

    def quantile(self, q: float) -> float:
        """λ where the mid-point CDF, interpolated linearly between nodes, reaches ``q`` (docs/theory.md §6.2).

        For p exact eigenvalues, q = (k − ½)/p returns the k-th smallest exactly; for a density
        given by quadrature nodes it is the usual interpolated quantile.
        """
        if not 0.0 <= q <= 1.0 or self.nodes.size == 0:
            return math.nan
        return float(np.interp(q, self.midpoint_cdf(), self.nodes))


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Which levels define the timescales (docs/theory.md §6).

    ``gen_frac``: τ_gen is the first τ with E_score ≤ (1 + gen_frac)·min E_score;
    ``mem_frac``: τ_mem is the first τ with L_gen ≥ mem_frac·L_gen(τ_max);
    ``mem_abs``: τ_mem_abs is the first τ with L_gen ≥ mem_abs.
    """

    gen_frac: float = 0.1
    mem_frac: float = 0.5
    mem_abs: float = 0.05

    def __post_init__(self):
        for name, lo, hi in (("gen_frac", 0.0, math.inf), ("mem_frac", 0.0, 1.0), ("mem_abs", 0.0, math.inf)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) \
                    or not math.isfinite(float(v)) or not lo < float(v) < hi:
                bound = f"in ({lo:g}, {hi:g})" if math.isfinite(hi) else f"finite and > {lo:g}"
                raise ValueError(f"{name} must be {bound}, got {v!r}")
            object.__setattr__(self, name, float(v))


@dataclasses.dataclass(frozen=True)
class Timescales:
    """τ_gen, τ_mem and what they were read from, by the rule of :class:`Thresholds` (docs/theory.md §6).

    From curves: ``tau_gen`` (score error within ``gen_frac`` of its minimum ``min_score_error``,
    reached at ``tau_at_min``); ``tau_mem`` (gap reaches ``mem_frac`` of ``final_gap``) and
    ``tau_mem_abs``. From the spectrum (§6.2): ``lambda_mem``, the first eigenvalue of the
    memorisation bulk (spectral quantile 1 − n/p + 1/(2p)), and ``tau_mem_spectral = ψ_p/(Δ_t λ_mem)``;
    ``lambda_mem_upper``, its last eigenvalue (quantile 1 − d/p − 1/(2p));
    ``lambda_pop``, the first eigenvalue of the population bulk (quantile 1 − d/p + 1/(2p)), and
    ``tau_gen_spectral = ψ_p/(Δ_t λ_pop)``. NaN where undefined.
    """

    tau_gen: float = math.nan
    min_score_error: float = math.nan
    tau_at_min: float = math.nan
    tau_mem: float = math.nan
    tau_mem_abs: float = math.nan
    final_gap: float = math.nan
    lambda_mem: float = math.nan
    tau_mem_spectral: float = math.nan
    lambda_mem_upper: float = math.nan
    lambda_pop: float = math.nan
    tau_gen_spectral: float = math.nan
    thresholds: Thresholds = Thresholds()


@dataclasses.dataclass(frozen=True, eq=False)
class Prediction:
    """What the theory says for one (activation, t, ρ_Σ, ψ_p, ψ_n [, d]) (docs/theory.md §4, §6).

    Spectrum: ``spectrum`` (atom at s_t² + quadrature of the density), the atom (``atom_location``,
    ``atom_weight`` measured, ``atom_weight_formula`` rank count, ``atom_weight_asymptotic``
    Theorem 3.2), the bulks (``edges``, ``bulk_masses``, ``bulk_v_masses``, ``bulk_labels``,
    ``finite_group``), the memorisation edge ``lambda_mem`` (spectral quantile 1 − ψ_n/ψ_p + 1/(2p)),
    ``lambda_mem_support`` (lower edge of the memorisation bulk) and ``lambda_mem_asymptotic``.
    Spectral timescales ψ_p/(Δ_t λ): ``tau_gen_spectral`` (Theorem 3.2 population edge),
    ``tau_gen_spectral_exact`` (Theorem 3.1), ``tau_gen_mean``, ``tau_mem_spectral`` (at
    ``lambda_mem``), ``tau_mem_asymptotic``. Losses: ``train_loss_inf``, ``train_loss_plateau``,
    ``test_loss_inf`` and ``curves`` (with ``taus``). ``diagnostics``: convergence counts,
    contour error, methods. ``d`` is set when the finite-d correction was used.
    """

    activation: str
    t: float
    psi_p: float
    psi_n: float
    atoms: list
    sigma_x2: float
    d: Optional[int]
    constants: dict
    spectrum: Spectrum
    atom_location: float
    atom_weight: float
    atom_weight_formula: float
    atom_weight_asymptotic: float
    edges: list
    bulk_masses: list
    bulk_v_masses: list
    bulk_labels: Optional[dict]
    finite_group: Optional[dict]
    lambda_mem: float
    lambda_mem_support: float
    lambda_mem_asymptotic: float
    tau_gen_spectral: float
    tau_gen_spectral_exact: float
    tau_gen_mean: float
    tau_mem_spectral: float
    tau_mem_asymptotic: float
    rho1_edges_asymptotic: list
    rho2_edges_asymptotic: list
    train_loss_inf: float
    train_loss_plateau: float
    test_loss_inf: float = math.nan
    curves: Optional[Curves] = None
    diagnostics: dict = dataclasses.field(default_factory=dict)

    def __getitem__(self, name: str):
        return getattr(self, name)


# ----------------------------------------------------------------------------------------------
# JSON + NPZ

_REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Make a frozen dataclass loadable by :func:`load` (used as a class decorator)."""
    if not dataclasses.is_dataclass(cls):
        raise ValueError(f"{cls!r} is not a dataclass")
    _REGISTRY[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


for _c in (Curves, Spectrum, Thresholds, Timescales, Prediction):
    register(_c)


def _type_name(obj) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def to_payload(obj) -> tuple[Any, dict]:
    """Split ``obj`` into a JSON-able tree and a dict of arrays (referenced from the tree by key)."""
    arrays: dict[str, np.ndarray] = {}

    def walk(x, path):
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            name = _type_name(x)
            if name not in _REGISTRY:
                register(type(x))
            return {"__type__": name,
                    **{f.name: walk(getattr(x, f.name), f"{path}.{f.name}") for f in dataclasses.fields(x)}}
        if isinstance(x, Mapping):
            return {"__dict__": [[walk(k, path), walk(v, f"{path}.{k}")] for k, v in x.items()]} \
                if any(not isinstance(k, str) for k in x) else {str(k): walk(v, f"{path}.{k}") for k, v in x.items()}
        if isinstance(x, tuple):
            return {"__tuple__": [walk(v, f"{path}.{i}") for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(x)]
        if isinstance(x, (np.ndarray,)) or type(x).__module__.startswith("jax"):
            a = np.asarray(x)
            if a.dtype == object:
                raise ValueError(f"cannot save an object array at {path}")
            key = path.lstrip(".") or "value"
            arrays[key] = a
            return {"__array__": key}
        if isinstance(x, (bool, np.bool_)):
            return bool(x)
        if isinstance(x, (int, np.integer)):
            return int(x)
        if isinstance(x, (float, np.floating)):
            f = float(x)
            return f if math.isfinite(f) else {"__float__": repr(f)}
        if x is None or isinstance(x, str):
            return x
        raise ValueError(f"cannot save a value of type {type(x).__name__} at {path}")

    return walk(obj, ""), arrays


def from_payload(tree, arrays: Mapping[str, np.ndarray]):
    """Inverse of :func:`to_payload`."""

    def walk(x):
        if isinstance(x, list):
            return [walk(v) for v in x]
        if not isinstance(x, dict):
            return x
        if "__array__" in x:
            return np.asarray(arrays[x["__array__"]])
        if "__float__" in x:
            return float(x["__float__"])
        if "__tuple__" in x:
            return tuple(walk(v) for v in x["__tuple__"])
        if "__dict__" in x:
            return {_hashable(walk(k)): walk(v) for k, v in x["__dict__"]}
        if "__type__" in x:
            cls = _REGISTRY.get(x["__type__"]) or _import_type(x["__type__"])
            if cls is None:
                raise CorruptResult(f"unknown result type {x['__type__']!r}")
            kw = {k: walk(v) for k, v in x.items() if k != "__type__"}
            return cls(**kw)
        return {k: walk(v) for k, v in x.items()}

    return walk(tree)


def _import_type(name: str):
    """Import the module of a type of rfdiff's own packages (whose import registers it) and look it up again.

    Only rfdiff, rfdiff_cli and rfdiff_analysis modules are imported: a saved file never imports other code.
    """
    module, _, qual = name.rpartition(".")
    if module.split(".")[0] not in ("rfdiff", "rfdiff_cli", "rfdiff_analysis"):
        return None
    try:
        cls = getattr(importlib.import_module(module), qual, None)
    except ImportError:
        return None
    if cls is not None and dataclasses.is_dataclass(cls):
        register(cls)
    return _REGISTRY.get(name)


def _hashable(k):
    return tuple(_hashable(v) for v in k) if isinstance(k, list) else k


def save(obj, stem, meta: Optional[dict] = None, overwrite: bool = True) -> list[Path]:
    """Write ``obj`` as ``stem.json`` (tree, plus ``meta``) and ``stem.npz`` (arrays), each atomically.

    The NPZ is written first, so a JSON that exists always has its arrays. ``overwrite=False`` raises
    ``FileExistsError`` instead of replacing an existing file (checked atomically, so two concurrent
    writers of one stem cannot both succeed).
    """
    stem = Path(stem)
    tree, arrays = to_payload(obj)
    text = json.dumps({"result": tree, "meta": _jsonable(meta or {})}, indent=1, sort_keys=True) + "\n"
    npz, js = stem.with_name(stem.name + ".npz"), stem.with_name(stem.name + ".json")
    atomic_write(npz, lambda fh: np.savez(fh, **arrays), overwrite)
    atomic_write(js, lambda fh: fh.write(text.encode()), overwrite)
    return [js, npz]


def load(stem, with_meta: bool = False):
    """Read what :func:`save` wrote; :class:`CorruptResult` if either file is missing or unreadable."""
    stem = Path(stem)
    js, npz = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".npz")
    try:
        doc = json.loads(js.read_text())
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        obj = from_payload(doc["result"], arrays)
    except CorruptResult:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as err:
        raise CorruptResult(f"{stem}: {type(err).__name__}: {err}") from None
    return (obj, doc.get("meta", {})) if with_meta else obj


def _jsonable(x):
    return to_jsonable(x)
