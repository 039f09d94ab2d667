"""Atomic file writing: one file, or several files published together as one result.

A file is written to a temporary file in its own folder, then renamed into place, so a reader
never sees a partial file. :func:`commit` does this for a group of files (a result's JSON + NPZ,
a figure's PNG + PDF): every member is written first, then all are published, the last one
(the *marker*) last, so the group counts as present only when its marker is. A group cut short
(killed between two renames) leaves members without their marker: the next commit of the
same names removes them, and temporary files of dead writers are removed too.
Nothing here knows what the files mean.
"""
from __future__ import annotations

import errno
import glob
import hashlib
import json
import math
import os
import re
import secrets
import socket
import stat
import time
from pathlib import Path
from typing import Callable, Mapping, Optional

import numpy as np

__all__ = ["commit", "atomic_write", "save_json", "save_npz", "to_jsonable", "name_max", "check_names",
           "remove_stale_temps", "temp_path", "is_no_space", "TEMP_EXTRA_BYTES", "STALE_AFTER_S"]

# a temporary file is ".<name>.<host tag><pid>-<8 hex>.tmp": the name plus at most this many bytes
# (host tag: 4 hex digits of the host name; pid < 2**22, 7 digits)
TEMP_EXTRA_BYTES = len(".") + len(".") + 4 + 7 + len("-") + 8 + len(".tmp")
_TEMP = re.compile(r"\.([0-9a-f]{4})(\d+)-[0-9a-f]{8}\.tmp$")
STALE_AFTER_S = 86400.0          # a temporary file of another host is stale after a day


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:4]


def temp_path(path, pid: Optional[int] = None) -> Path:
    """Where this process (or ``pid`` on this host) writes ``path`` before publishing it."""
    path = Path(path)
    return path.with_name(f".{path.name}.{_host_tag()}{os.getpid() if pid is None else pid}-{secrets.token_hex(4)}.tmp")


def name_max(folder) -> int:
    """Longest file name (bytes) the file system of ``folder`` (or of its nearest existing parent) accepts."""
    probe = Path(folder).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return int(os.pathconf(probe, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def check_names(folder, names) -> None:
    """``ValueError`` if a file of one of ``names`` (or its temporary file) would be too long for ``folder``.

    Called before a computation, so that a result is never computed only to fail at saving."""
    limit = name_max(folder)
    for name in names:
        size = len(str(name).encode()) + TEMP_EXTRA_BYTES
        if size > limit:
            raise ValueError(f"name: {str(name)[:40]!r}… makes a file name of {size} bytes (with its temporary "
                             f"file); {folder} allows {limit}: shorten it by {size - limit} bytes")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale_temps(path) -> list[Path]:
    """Remove the temporary files of ``path`` left by writers that no longer run (killed mid-write).

    A writer of this host is known dead when its process is gone; one of another host (a shared file
    system) is taken as dead after :data:`STALE_AFTER_S`. Returns what was removed."""
    path = Path(path)
    removed, host = [], _host_tag()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        m = _TEMP.search(tmp.name)
        if not m or tmp.name != f".{path.name}{m.group(0)}":
            continue
        try:
            stale = not _alive(int(m.group(2))) if m.group(1) == host else \
                time.time() - tmp.stat().st_mtime > STALE_AFTER_S
            if stale:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass
    return removed


def _check_replaceable(path: Path) -> None:
    """Only regular files are replaced: a symlink, device, folder or socket at ``path`` is refused."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        kind = ("a symbolic link" if stat.S_ISLNK(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise ValueError(f"{path} is {kind}: only a regular file is ever replaced")


def commit(files: Mapping[Path, Callable], overwrite: bool = True) -> list[Path]:
    """Write a group of files as one result: ``{path: write(fh)}``, the last path being the marker.

    Every member is written to a temporary file first (a failure, e.g. a full disk, removes them all
    and publishes nothing); then the members are renamed into place in order, the marker last. Before
    publishing, members present without their marker (left by a commit that was cut short) are removed,
    as are temporary files of dead writers. ``overwrite=True`` removes an existing marker first, so that
    an interruption never pairs the new members with an old marker; ``overwrite=False`` hard-links each
    member into place, which fails with ``FileExistsError`` (and undoes this commit's links) if one exists,
    also if another process created it meanwhile. Only regular files are replaced (``ValueError`` for a
    symlink, device or folder at a path).
    """
    paths = [Path(p) for p in files]
    if not paths:
        return []
    for path in paths:
        _check_replaceable(path)
    temps: dict[Path, Path] = {}
    linked: list[Path] = []
    try:
        for path, write in zip(paths, files.values()):
            path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(path)
            tmp = temps[path] = temp_path(path)
            try:
                with open(tmp, "xb") as fh:
                    write(fh)
                    fh.flush()
            except OSError as err:                    # name the file (a write to a full disk names none)
                if err.filename is None and err.errno is not None:
                    raise OSError(err.errno, err.strerror or os.strerror(err.errno), str(path)) from err
                raise
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        marker = paths[-1]
        if not os.path.lexists(marker):               # members without their marker: a commit cut short
            for orphan in paths[:-1]:
                if os.path.lexists(orphan):
                    _check_replaceable(orphan)
                    orphan.unlink()
        elif overwrite:
            marker.unlink()                           # never the new members next to the old marker
        for path in paths:
            if overwrite:
                os.replace(temps[path], path)
            else:
                os.link(temps[path], path)
                linked.append(path)
    except BaseException:
        for path in linked:
            try:
                path.unlink()
            except OSError:
                pass
        raise
    finally:
        for tmp in temps.values():
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
    return paths


def atomic_write(path, write, overwrite: bool = True) -> Path:
    """Write ``path`` through ``write(fh)`` on a temporary file in the same folder, then rename it into place.

    ``overwrite=False`` raises ``FileExistsError`` if ``path`` exists (also when another process created
    it meanwhile); only a regular file is ever replaced (see :func:`commit`)."""
    return commit({Path(path): write}, overwrite)[0]


def is_no_space(err: BaseException) -> bool:
    """Whether ``err`` says the file system is full (or the user's quota is)."""
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


def to_jsonable(obj):
    """Recursively turn numpy/jax scalars and arrays into JSON types (non-finite floats → None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray) or type(obj).__module__.startswith("jax"):
        return to_jsonable(np.asarray(obj).tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


def save_json(path, obj, overwrite: bool = True) -> Path:
    """Write ``obj`` as indented JSON atomically (temp file + rename)."""
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=True) + "\n"
    return atomic_write(Path(path), lambda fh: fh.write(text.encode()), overwrite)


def save_npz(path, arrays: dict, overwrite: bool = True) -> Path:
    """Write arrays to a compressed NPZ atomically."""
    return atomic_write(Path(path), lambda fh: np.savez_compressed(fh, **{k: np.asarray(v) for k, v in arrays.items()}),
                        overwrite)
