"""Atomic saving of results (JSON + NPZ) with the metadata needed to reproduce them."""
from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import resource
import subprocess
import tempfile
from pathlib import Path

import jax
import numpy as np

_PACKAGES = ("rfdiff", "jax", "jaxlib", "numpy", "scipy", "optax", "matplotlib")


def run_metadata() -> dict:
    """Library versions, Python, platform, CPU count, JAX backend, x64 flag and git commit."""
    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"versions": versions, "python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "jax_backend": jax.default_backend(),
            "jax_devices": [str(d) for d in jax.devices()], "x64_global": bool(jax.config.jax_enable_x64),
            "git_commit": commit}


def cache_folder() -> Path:
    """The user cache folder of rfdiff: ``$RFDIFF_CACHE``, else ``$XDG_CACHE_HOME/rfdiff``, else ``~/.cache/rfdiff``."""
    if os.environ.get("RFDIFF_CACHE"):
        return Path(os.environ["RFDIFF_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rfdiff"


def enable_compilation_cache(path=None) -> Path:
    """Turn on JAX's persistent compilation cache in ``path`` (default ``cache_folder()/jax``).

    This changes the process's JAX configuration, so only commands call it (never the library's
    own functions): a second run then loads compiled kernels instead of compiling them.
    """
    folder = Path(path) if path is not None else cache_folder() / "jax"
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


def device_memory() -> dict | None:
    """Peak and limit of the default accelerator's memory in bytes (None on CPU, where peak RSS applies)."""
    dev = jax.devices()[0]
    stats = dev.memory_stats() if dev.platform != "cpu" else None
    if not stats:
        return None
    return {k: int(stats[k]) for k in ("peak_bytes_in_use", "bytes_limit", "bytes_in_use") if k in stats}


def peak_rss_bytes() -> int:
    """Peak resident memory of this process in bytes (Linux ru_maxrss is in KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def to_jsonable(obj):
    """Recursively turn numpy/jax scalars and arrays into JSON types (non-finite floats → None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.ndarray, jax.Array)):
        return to_jsonable(np.asarray(obj).tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


def atomic_write(path: Path, write, overwrite: bool = True) -> None:
    """Write ``path`` through ``write(fh)`` on a temporary file in the same folder, then rename it into place.

    With ``overwrite=False`` the temporary file is hard-linked into place instead, which fails with
    ``FileExistsError`` if ``path`` exists (also when another process created it meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; results are ordinary files
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON atomically (temp file + rename)."""
    path = Path(path)
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode()))
    return path


def save_npz(path, arrays: dict) -> Path:
    """Write arrays to a compressed NPZ atomically."""
    path = Path(path)
    atomic_write(path, lambda fh: np.savez_compressed(fh, **{k: np.asarray(v) for k, v in arrays.items()}))
    return path


def save_figure(fig, stem, tight: bool = True) -> list[Path]:
    """Save a matplotlib figure as ``stem.png`` and ``stem.pdf`` atomically (``tight``: crop to the drawn area)."""
    out = []
    for ext in ("png", "pdf"):
        path = Path(f"{stem}.{ext}")
        atomic_write(path, lambda fh, ext=ext: fig.savefig(fh, format=ext, dpi=150,
                                                          bbox_inches="tight" if tight else None))
        out.append(path)
    return out
