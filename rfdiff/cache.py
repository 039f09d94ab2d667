"""A content-addressed cache of unit results: one atomic JSON + NPZ entry per unit config.

:func:`unit_key` hashes the unit's full config, type, ``kind`` (sub-folder) and :data:`CACHE_VERSION`
(bump it when the library's results change). Each entry's JSON carries its manifest record in
``meta``, one file per unit, so concurrent sweeps never corrupt a shared manifest
(:func:`read_manifest` assembles them). An entry that cannot be read, or that records another
key or kind than its name, is treated as missing and recomputed.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import re
import socket
import tempfile
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import results as _results

__all__ = ["CACHE_VERSION", "Cache", "unit_key", "read_manifest"]

CACHE_VERSION = 1
"""Part of every cache key: bump it when results of unchanged configs change."""

_KIND = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _check_kind(kind) -> str:
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise ValueError(f"kind must be a name made of letters, digits, '_', '.', '-', got {kind!r}")
    return kind


def _canonical(tree, arrays: dict) -> Any:
    """Replace array references in a payload tree by (dtype, shape, SHA-256 of the bytes)."""
    if isinstance(tree, list):
        return [_canonical(v, arrays) for v in tree]
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            a = np.ascontiguousarray(arrays[tree["__array__"]])
            return {"__array__": [a.dtype.str, list(a.shape), hashlib.sha256(a.tobytes()).hexdigest()]}
        return {k: _canonical(v, arrays) for k, v in tree.items()}
    return tree


def unit_tree(unit) -> Any:
    """The unit's config as a canonical JSON tree (what its key hashes and its entry records)."""
    if not dataclasses.is_dataclass(unit) or isinstance(unit, type):
        raise ValueError(f"unit must be a dataclass instance, got {type(unit).__name__}")
    return _canonical(*_results.to_payload(unit))


def unit_key(kind: str, unit) -> str:
    """32 hex digits of SHA-256 over the unit's full config, type, ``kind`` and CACHE_VERSION; every field by
    value and type (``1`` ≠ ``1.0``), floats by their round-trip repr, so equal configs share a key in any process."""
    doc = {"cache_version": CACHE_VERSION, "kind": _check_kind(kind), "unit": unit_tree(unit)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()).hexdigest()[:32]


@dataclasses.dataclass(frozen=True)
class Cache:
    """Where a sweep keeps its results: ``<root>/<kind>/<key>.json`` + ``.npz``. ``root`` must be reachable by
    every worker; ``kind`` None: the unit function's ``module.qualname`` (:meth:`for_fn`); ``recompute``:
    ignore existing entries (they are overwritten)."""

    root: Path
    kind: Optional[str] = None
    recompute: bool = False

    def __post_init__(self):
        if not isinstance(self.root, (str, os.PathLike)) or str(self.root) == "":
            raise ValueError(f"cache_dir must be a path, got {self.root!r}")
        object.__setattr__(self, "root", Path(self.root))
        self.kind is None or _check_kind(self.kind)
        if not isinstance(self.recompute, (bool, np.bool_)):
            raise ValueError(f"recompute must be a bool, got {self.recompute!r}")

    def for_fn(self, fn) -> "Cache":
        """This cache with ``kind`` set (default: ``fn``'s module and qualified name) and its folder created."""
        kind = self.kind or re.sub(r"[^A-Za-z0-9_.-]", "_", f"{fn.__module__}.{fn.__qualname__}").lstrip(".")
        folder = self.root / kind
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=folder, prefix=".probe.").close()
        except OSError as err:
            raise ValueError(f"cache_dir {str(self.root)!r} is not a creatable, writable folder "
                             f"({type(err).__name__}: {err.strerror or err})") from None
        return dataclasses.replace(self, kind=kind)

    def load(self, key: str):
        """The cached result of ``key``; :class:`rfdiff.results.CorruptResult` if absent, unreadable or misfiled."""
        if self.recompute:
            raise _results.CorruptResult("recompute")
        with warnings.catch_warnings():  # an entry of an older rfdiff has no content hash; its key is checked below
            warnings.filterwarnings("ignore", message=".*has no content hash")
            obj, meta = _results.load(self.root / self.kind / key, with_meta=True)
        if (meta.get("key"), meta.get("kind")) != (key, self.kind):
            raise _results.CorruptResult(f"{self.root / self.kind / key}.json records key {meta.get('key')!r} "
                                         f"of kind {meta.get('kind')!r}")
        return obj

    def save(self, key: str, unit, result, runtime_s: float, worker: str, said: tuple) -> None:
        """Write the entry of ``key`` with its manifest record."""
        from . import __version__

        meta = {"kind": self.kind, "key": key, "cache_version": CACHE_VERSION, "unit": unit_tree(unit),
                "unit_type": f"{type(unit).__module__}.{type(unit).__qualname__}", "runtime_s": runtime_s,
                "worker": worker, "host": socket.gethostname(), "pid": os.getpid(), "rfdiff_version": __version__,
                "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
                "warnings": list(said)}
        _results.save(result, self.root / self.kind / key, meta=meta)


def read_manifest(cache_dir, kind: Optional[str] = None) -> list[dict]:
    """One dict per finished unit (of one ``kind``, or all), sorted by kind then finish time: the entry's ``meta``
    plus ``path`` and ``complete`` (its NPZ exists), or ``{"kind", "key", "path", "error"}`` for an unreadable JSON."""
    root = Path(cache_dir)
    if not root.is_dir():
        raise ValueError(f"cache_dir {str(cache_dir)!r} is not an existing folder")
    folders = [root / _check_kind(kind)] if kind is not None else sorted(p for p in root.iterdir() if p.is_dir())
    out = []
    for js in (js for f in folders if f.is_dir() for js in sorted(f.glob("[!.]*.json"))):
        try:
            meta = json.loads(js.read_text()).get("meta")
            if not isinstance(meta, dict) or "key" not in meta:
                raise ValueError("no sweep meta")
            out.append({**meta, "path": str(js), "complete": js.with_suffix(".npz").exists()})
        except (OSError, ValueError, AttributeError) as err:
            out.append({"kind": js.parent.name, "key": js.stem, "path": str(js), "error": f"{type(err).__name__}: {err}"})
    return sorted(out, key=lambda e: (str(e.get("kind")), str(e.get("finished_at", "")), str(e.get("key"))))
