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
import hashlib
import importlib
import json
import math
import os
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import numpy as np

from . import io

__all__ = ["Curves", "Spectrum", "Timescales", "Thresholds", "Prediction", "CorruptResult", "register", "save", "load",
           "exists", "paths", "resolve_type", "content_hash", "to_payload", "from_payload"]

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

    ``at_grid_end`` names the values that sit at an end of the τ grid and so are bounds, not
    values: ``"tau_gen<"`` (E_score already within ``gen_frac`` of its minimum at τ_min: τ_gen ≤ τ_min),
    ``"min_score_error>"`` (E_score still falling at τ_max: its minimum, and so τ_gen's level, lie
    beyond the grid), ``"tau_mem<"``, ``"tau_mem_abs<"`` (reached at τ_min), ``"tau_mem_abs>"``
    (not reached by τ_max). :meth:`grid_end` reads it.
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
    at_grid_end: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "at_grid_end", tuple(self.at_grid_end))

    def grid_end(self, name: str) -> Optional[str]:
        """``"<"`` if ``name`` lies at or below the start of the τ grid, ``">"`` if beyond its end, else None."""
        for side in "<>":
            if name + side in self.at_grid_end:
                return side
        return None


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

FORMAT = 2                      # 2: content hash, array shapes and the types used are recorded
_REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Make a frozen dataclass loadable by :func:`load` (used as a class decorator)."""
    if not dataclasses.is_dataclass(cls) or not isinstance(cls, type):
        raise ValueError(f"{cls!r} is not a dataclass")
    _REGISTRY[_type_name(cls)] = cls
    return cls


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


for _c in (Curves, Spectrum, Thresholds, Timescales, Prediction):
    register(_c)


def to_payload(obj) -> tuple[Any, dict]:
    """Split ``obj`` into a JSON-able tree and a dict of arrays (referenced from the tree by key)."""
    arrays: dict[str, np.ndarray] = {}

    def walk(x, path):
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            name = _type_name(type(x))
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


def from_payload(tree, arrays: Mapping[str, np.ndarray], types: Optional[Mapping[str, type]] = None):
    """Inverse of :func:`to_payload`; ``types`` maps recorded type names to classes (default: the registry).

    Every field of a dataclass must be present, and no other: a missing or unknown field is a
    :class:`CorruptResult` (never a silent default)."""
    types = _REGISTRY if types is None else types

    def walk(x):
        if isinstance(x, list):
            return [walk(v) for v in x]
        if not isinstance(x, dict):
            return x
        if "__array__" in x:
            if x["__array__"] not in arrays:
                raise CorruptResult(f"array {x['__array__']!r} is missing from the NPZ")
            return np.asarray(arrays[x["__array__"]])
        if "__float__" in x:
            return float(x["__float__"])
        if "__tuple__" in x:
            return tuple(walk(v) for v in x["__tuple__"])
        if "__dict__" in x:
            return {_hashable(walk(k)): walk(v) for k, v in x["__dict__"]}
        if "__type__" in x:
            name = x["__type__"]
            cls = types.get(name) or _REGISTRY.get(name)
            if cls is None:
                raise CorruptResult(f"unknown result type {name!r}")
            kw = {k: walk(v) for k, v in x.items() if k != "__type__"}
            fields = {f.name for f in dataclasses.fields(cls) if f.init}
            derived = {f.name for f in dataclasses.fields(cls) if not f.init}       # recomputed by the class
            kw = {k: v for k, v in kw.items() if k not in derived}
            missing, unknown = sorted(fields - kw.keys()), sorted(kw.keys() - fields)
            if missing or unknown:
                what = "; ".join(s for s in (f"missing field(s) {', '.join(missing)}" if missing else "",
                                             f"unknown field(s) {', '.join(unknown)}" if unknown else "") if s)
                raise CorruptResult(f"{name}: {what}")
            try:
                return cls(**kw)
            except (ValueError, TypeError) as err:
                raise CorruptResult(f"{name}: {err}") from None
        return {k: walk(v) for k, v in x.items()}

    return walk(tree)


def _types_used(tree) -> dict[str, list[str]]:
    """``{recorded name: [module, qualname]}`` of every dataclass in a payload tree."""
    out: dict[str, list[str]] = {}

    def walk(x):
        if isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, dict):
            if "__type__" in x and x["__type__"] in _REGISTRY:
                cls = _REGISTRY[x["__type__"]]
                out[x["__type__"]] = [cls.__module__, cls.__qualname__]
            for v in x.values():
                walk(v)

    walk(tree)
    return out


def resolve_type(name: str, module: str, qualname: str, modules: Iterable[str] = ()) -> type:
    """The dataclass recorded as ``name`` (``module`` + ``qualname``), imported explicitly.

    A module is imported only if it is rfdiff's own, already imported, or named (or its package
    named) in ``modules`` by the caller: a saved file never makes other code run.
    :class:`CorruptResult` if the type cannot be found."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise CorruptResult(f"unknown result type {name!r} (no module recorded)")
    trusted = set(modules) | {"rfdiff"}
    parts = module.split(".")
    allowed = module in sys.modules or any(".".join(parts[:i]) in trusted for i in range(1, len(parts) + 1))
    if not allowed:
        raise CorruptResult(f"unknown result type {name!r} (its module {module} is not imported: import it, or "
                            f"pass modules=[{module!r}])")
    try:
        obj: Any = importlib.import_module(module)
        for attr in qualname.split("."):
            obj = getattr(obj, attr)
    except (ImportError, AttributeError) as err:
        raise CorruptResult(f"unknown result type {name!r} ({type(err).__name__}: {err})") from None
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        raise CorruptResult(f"unknown result type {name!r} ({module}.{qualname} is not a dataclass)")
    return register(obj)


def _hashable(k):
    return tuple(_hashable(v) for v in k) if isinstance(k, list) else k


def _array_spec(arrays: Mapping[str, np.ndarray]) -> dict:
    return {k: {"shape": list(a.shape), "dtype": a.dtype.str} for k, a in sorted(arrays.items())}


def content_hash(tree, arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of a result's tree, its arrays' names, shapes and dtypes, and their bytes."""
    h = hashlib.sha256(json.dumps({"result": tree, "arrays": _array_spec(arrays)}, sort_keys=True,
                                  separators=(",", ":")).encode())
    for k, a in sorted(arrays.items()):
        h.update(k.encode() + b"\0")
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def paths(stem) -> tuple[Path, Path]:
    """``(stem.json, stem.npz)``: the marker of a result and its arrays."""
    stem = Path(stem)
    return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".npz")


def exists(stem) -> bool:
    """Whether a result was committed at ``stem`` (its JSON, the marker, exists; an NPZ alone is not a result)."""
    return os.path.lexists(paths(stem)[0])


def save(obj, stem, meta: Optional[dict] = None, overwrite: bool = True) -> list[Path]:
    """Write ``obj`` as ``stem.json`` (tree, types, array shapes, content hash, plus ``meta``) and ``stem.npz``.

    One commit (:func:`rfdiff.io.commit`): both files are written, then published, the JSON last, so a
    JSON that exists always has its arrays and an interrupted save leaves no result. ``overwrite=False``
    raises ``FileExistsError`` instead of replacing an existing result (checked atomically, so two
    concurrent writers of one stem cannot both succeed). ``ValueError`` if a name is too long for the
    folder or a value cannot be saved (before anything is written).
    """
    js, npz = paths(stem)
    io.check_names(js.parent, [js.name, npz.name])
    tree, arrays = to_payload(obj)
    doc = {"format": FORMAT, "result": tree, "types": _types_used(tree), "arrays": _array_spec(arrays),
           "sha256": content_hash(tree, arrays), "meta": io.to_jsonable(meta or {})}
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    io.commit({npz: lambda fh: np.savez(fh, **arrays), js: lambda fh: fh.write(text.encode())}, overwrite)
    return [js, npz]


def load(stem, with_meta: bool = False, *, modules: Iterable[str] = ()):
    """Read what :func:`save` wrote, after checking that the pair belongs together.

    The types the file records are resolved first by :func:`resolve_type` (``modules``: packages
    whose types may be imported besides rfdiff's own). :class:`CorruptResult` if either file is
    missing or unreadable, the arrays' names, shapes or dtypes differ from those recorded, the
    content hash does not match (the JSON edited, or paired with another run's NPZ), or a field is
    missing. A file without a content hash (written by an older rfdiff) loads with a warning.
    """
    stem = Path(stem)
    js, npz = paths(stem)
    try:
        doc = json.loads(js.read_text())
        if not isinstance(doc, dict) or "result" not in doc:
            raise CorruptResult(f"{js}: not a result file (no 'result')")
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if "format" in doc:
            _check_pair(doc, arrays, js, npz)
            types = {name: resolve_type(name, *(list(where) + [None, None])[:2], modules=modules)
                     for name, where in doc["types"].items()}
        else:
            warnings.warn(f"{js} has no content hash (written by an older rfdiff): its JSON and NPZ cannot be "
                          f"checked against each other", stacklevel=2)
            types = {}
            for name in _legacy_types(doc["result"]):
                module, _, qual = name.rpartition(".")
                types[name] = resolve_type(name, module, qual, modules=modules)
        obj = from_payload(doc["result"], arrays, types)
    except CorruptResult as err:
        raise CorruptResult(f"{stem}: {err}") from None
    except (OSError, ValueError, KeyError, TypeError, EOFError, AttributeError, zipfile.BadZipFile) as err:
        raise CorruptResult(f"{stem}: {type(err).__name__}: {err}") from None
    return (obj, doc.get("meta", {})) if with_meta else obj


def _check_pair(doc: dict, arrays: Mapping[str, np.ndarray], js: Path, npz: Path) -> None:
    for key in ("types", "arrays", "sha256"):
        if key not in doc:
            raise CorruptResult(f"{js}: missing key {key!r}")
    if doc["format"] != FORMAT:
        raise CorruptResult(f"{js}: format {doc['format']!r}, this rfdiff reads format {FORMAT}")
    spec = _array_spec(arrays)
    if spec != doc["arrays"]:
        diff = sorted(set(spec) ^ set(doc["arrays"])) or \
            [k for k in sorted(spec) if spec[k] != doc["arrays"].get(k)]
        k = diff[0]
        raise CorruptResult(f"{npz} does not match {js.name}: array {k!r} is "
                            f"{_describe(spec.get(k))} there, {_describe(doc['arrays'].get(k))} in the JSON")
    if content_hash(doc["result"], arrays) != doc["sha256"]:
        raise CorruptResult(f"{js} and {npz.name} do not match their content hash (edited, or from different runs)")


def _describe(s) -> str:
    return "absent" if s is None else f"shape {tuple(s['shape'])} {s['dtype']}"


def _legacy_types(tree) -> set[str]:
    out: set[str] = set()

    def walk(x):
        if isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, dict):
            if isinstance(x.get("__type__"), str):
                out.add(x["__type__"])
            for v in x.values():
                walk(v)

    walk(tree)
    return out
