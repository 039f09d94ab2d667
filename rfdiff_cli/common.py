"""What every command shares: flag validation, output paths, progress bars, the compilation cache, Ctrl-C.

A command builds its configuration dataclasses from the parsed flags inside :func:`configs`;
a library ``ValueError`` (which names its parameter) becomes one line naming the flag, exit 2,
before any computation. :func:`output_stem` checks the output folder and the run name and
refuses to overwrite an existing result unless asked; :class:`Parser` gives help that shows every
default under the sub-command's name (``rfdiff run``). :func:`guarded` turns Ctrl-C into one line
and exit 130, and a full disk into one line and exit 1 (every result is committed whole, so
nothing partial is left). Run provenance (versions, git commit) is recorded by :func:`run_metadata`.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Callable, Optional

# XLA logs an ERROR line per kernel loaded from the persistent compilation cache (a tuning-feature mismatch
# that is harmless on the machine that compiled it): keep the C++ log quiet unless the user asks.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


class UsageError(Exception):
    """A bad flag value; the message names the flag."""


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Help that keeps the description's line breaks, shows every default, and never breaks a word."""

    def _get_help_string(self, action):
        text, default = action.help or "", action.default
        if "%(default)" in text or "(default" in text or default is None or default is False \
                or default is argparse.SUPPRESS or not action.option_strings:
            return text
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"

    def _split_lines(self, text, width):
        import textwrap
        return textwrap.wrap(" ".join(text.split()), width, break_long_words=False, break_on_hyphens=False)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: argument --p: invalid int value: 'x'``), exit 2, and
    :class:`Formatter` help; ``prog`` is the sub-command (``rfdiff run``)."""

    def __init__(self, *args, **kw):
        kw.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kw)

    def error(self, message):
        self.exit(EXIT_USAGE, f"error: {message} (see {self.prog} --help)\n")


# parameters whose flag is not ``--`` + name with dashes
FLAG_NAMES = {"lanczos_max_steps": "--lanczos-steps", "kind": "--data", "sigma_x": "--sigma-x", "n_workers": "--workers",
              "frac": "--gen-frac", "abs_threshold": "--mem-abs"}


def flag_of(param: str) -> str:
    return FLAG_NAMES.get(param, "--" + param.replace("_", "-"))


def usage_error(err: ValueError) -> UsageError:
    """A library ValueError ("eta must be …") as a UsageError naming the flag ("--eta: eta must be …")."""
    msg = str(err).splitlines()[0] if str(err) else type(err).__name__
    m = re.match(r"(?:unknown )?([A-Za-z_][A-Za-z0-9_]*)", msg)
    name = m.group(1) if m else ""
    if msg.startswith("unknown activation"):
        name = "activation"
    elif msg.startswith("unknown data kind"):
        name = "kind"
    return UsageError(f"{flag_of(name)}: {msg}" if name else msg)


def configs(build: Callable[[], object]):
    """Call ``build()`` (which constructs the frozen configuration dataclasses), mapping ValueErrors to flags."""
    try:
        return build()
    except ValueError as err:
        raise usage_error(err) from None


def short_hash(obj) -> str:
    """8 hex digits of a hash of a configuration (every field, via the results serialiser)."""
    from rfdiff.results import to_payload
    tree, arrays = to_payload(obj)
    text = json.dumps(tree, sort_keys=True) + "".join(f"{k}{v.tobytes().hex()}" for k, v in sorted(arrays.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


MARKERS = (".json", ".pdf")     # a result is present when its JSON is; a figure when its PDF is (rfdiff.io.commit)
SUFFIXES = (".json", ".npz", ".png", ".pdf")


def output_stem(out: str, name: str, overwrite: bool, markers=MARKERS, suffixes=SUFFIXES) -> Path:
    """``out/name``, after checking that ``out`` is (or can be made) a writable folder, ``name`` is a plain
    file name short enough for every file the save will create (``name_NNN`` + each suffix + its temporary
    file), and no result of that name exists unless ``overwrite``. Creates ``out``.

    Only a committed result counts (its JSON, or a figure's PDF): an NPZ or PNG left alone by an interrupted
    save is not a result, and is replaced by the next save."""
    if not name or name in (".", "..") or os.sep in name or (os.altsep and os.altsep in name) or "\0" in name:
        raise UsageError(f"--name: must be a plain file name without path separators, got {name!r}")
    folder = Path(out)
    check_folder(folder, "--out")
    from rfdiff import io
    try:
        io.check_names(folder, [f"{name}_999{s}" for s in suffixes])
    except ValueError as err:
        raise UsageError(f"--{err}") from None
    stem = folder / name
    if not overwrite:
        existing = [str(stem) + s for s in markers if os.path.lexists(str(stem) + s)]
        if existing:
            raise UsageError(f"--name: a result already exists at {existing[0]} (pass --overwrite to replace it)")
    for s in suffixes:
        if os.path.lexists(str(stem) + s) and not Path(str(stem) + s).is_file():
            raise UsageError(f"--name: {stem}{s} exists and is not a regular file")
    return writable_folder(folder, "--out") / name


def check_figure(figdir, names, overwrite: bool) -> None:
    """Refuse (before computing) to replace a figure ``<figdir>/<name>.pdf`` that exists, unless ``overwrite``;
    also refuse names too long for the folder. ``names``: one name or several."""
    from rfdiff import io
    names = [names] if isinstance(names, str) else list(names)
    check_folder(Path(figdir), "--figdir")
    try:
        io.check_names(figdir, [f"{n}.png" for n in names])
    except ValueError as err:
        raise UsageError(f"--figdir: {err}") from None
    existing = [Path(figdir) / f"{n}.pdf" for n in names if os.path.lexists(Path(figdir) / f"{n}.pdf")]
    if existing and not overwrite:
        raise UsageError(f"--figdir: a figure already exists at {existing[0]} (pass --overwrite to replace it, "
                         f"or --no-plot, or another --figdir)")


def no_space(err: BaseException, folder, saved=()) -> str:
    """The one line for a full disk: where, and what was saved before it filled."""
    what = ", ".join(str(f) for f in saved) if saved else "nothing"
    return f"no space left on {folder} (saved: {what})"


def save_result(obj, stem: Path, meta: dict, overwrite: bool) -> list[Path]:
    """``rfdiff.results.save`` without replacing anything unless ``overwrite``: if another run wrote ``stem``
    while this one computed, the result goes to ``stem_2`` (``_3``, …) and a line on stderr says so."""
    from rfdiff import results
    for k in range(1, 1000):
        target = stem if k == 1 else stem.with_name(f"{stem.name}_{k}")
        try:
            files = results.save(obj, target, meta=meta, overwrite=overwrite)
        except FileExistsError:
            continue
        if k > 1:
            print(f"note: {stem}.json appeared while this run computed; this result is at {target}.json",
                  file=sys.stderr)
        return files
    raise UsageError(f"--name: no free name next to {stem}")


def check_folder(folder: Path, flag: str) -> None:
    """Raise a UsageError naming ``flag`` if ``folder`` is a file or cannot be created or written."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag}: {folder} exists and is not a folder")
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{flag}: cannot create or write to {folder} ({probe} is not writable)")


def writable_folder(folder, flag: str) -> Path:
    """``folder`` as a Path, created if needed, after :func:`check_folder`."""
    folder = Path(folder)
    check_folder(folder, flag)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{flag}: cannot create {folder} ({e.strerror})") from None
    return folder


def add_name_flags(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--name", default=None, help="run name (default: readable parameters + a hash of the whole config)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing result of the same name")


def result_stem(args, prefix: str, params: dict) -> Path:
    """``<out>/<name>`` with the default name ``<prefix>_<hash of params>`` (params: every result-changing
    input), checked by :func:`output_stem`."""
    return output_stem(args.out, args.name or f"{prefix}_{short_hash(params)}", args.overwrite)


def add_output_flags(ap: argparse.ArgumentParser, default_out: str = "results") -> None:
    ap.add_argument("--out", default=default_out, help="output folder")
    add_name_flags(ap)
    ap.add_argument("--no-progress", action="store_true", help="hide progress bars")
    ap.add_argument("--no-compile-cache", action="store_true",
                    help="do not use JAX's persistent compilation cache (default: ~/.cache/rfdiff/jax, or $RFDIFF_CACHE)")


def add_threshold_flags(ap: argparse.ArgumentParser) -> None:
    """``--gen-frac``, ``--mem-frac``, ``--mem-abs``: the levels that define the timescales (defaults: ``rfdiff.Thresholds``)."""
    ap.add_argument("--gen-frac", type=float, default=None,
                    help="τ_gen: score error within this fraction of its minimum (default 0.1)")
    ap.add_argument("--mem-frac", type=float, default=None,
                    help="τ_mem: gap reaches this fraction of its final value (default 0.5)")
    ap.add_argument("--mem-abs", type=float, default=None, help="τ_mem (absolute): gap reaches this value (default 0.05)")


def thresholds(args):
    """The :class:`rfdiff.results.Thresholds` of the flags of :func:`add_threshold_flags` (unset flags: its defaults)."""
    from rfdiff.results import Thresholds
    given = {k: getattr(args, k) for k in ("gen_frac", "mem_frac", "mem_abs") if getattr(args, k) is not None}
    return Thresholds(**given)


def add_sweep_flags(ap: argparse.ArgumentParser) -> None:
    """The flags of :func:`rfdiff_cli.cluster.add_flags` (where a sweep runs)."""
    from rfdiff_cli import cluster
    cluster.add_flags(ap)


def cluster_from(args):
    """The checked :class:`rfdiff_cli.cluster.ClusterSpec` of the flags (UsageError on a bad or conflicting one)."""
    from rfdiff_cli import cluster
    return cluster.from_args(args)


def report_warnings(rep) -> None:
    """One line about the warnings the units of a sweep raised (they are recorded in the cache entries)."""
    if rep.warnings:
        units = sorted({i for i, _ in rep.warnings})
        first = rep.warnings[0][1].splitlines()[0]
        print(f"warning: {len(units)} unit(s) raised {len(rep.warnings)} warning(s), e.g. {first} "
              f"(each is recorded in its cache entry)", file=sys.stderr)


def setup(args) -> None:
    """Process-wide settings of a command (never of the library): the persistent compilation cache, quiet Dask logs."""
    import logging
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if not getattr(args, "no_compile_cache", False) and not os.environ.get("RFDIFF_NO_COMPILE_CACHE"):
        enable_compilation_cache()


def cache_folder() -> Path:
    """The user cache folder of rfdiff: ``$RFDIFF_CACHE``, else ``$XDG_CACHE_HOME/rfdiff``, else ``~/.cache/rfdiff``."""
    if os.environ.get("RFDIFF_CACHE"):
        return Path(os.environ["RFDIFF_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rfdiff"


def enable_compilation_cache(path=None) -> Optional[Path]:
    """Turn on JAX's persistent compilation cache in ``path`` (default ``cache_folder()/jax``).

    This changes the process's JAX configuration, so only commands call it (never the library):
    a second run then loads compiled kernels instead of compiling them. A folder that cannot be
    created or written (read-only home, a file in the way) gives one warning and no persistent cache."""
    folder = Path(path) if path is not None else cache_folder() / "jax"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(13, "not writable")
    except OSError as err:
        print(f"warning: no persistent compilation cache ({folder}: {err.strerror or err}); set RFDIFF_CACHE "
              f"to a writable folder", file=sys.stderr)
        return None
    import jax
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


_PACKAGES = ("rfdiff", "jax", "jaxlib", "numpy", "scipy", "optax", "matplotlib")


def run_metadata() -> dict:
    """What a saved result records about its run: library versions, Python, platform, CPU count, JAX backend,
    x64 flag and the git commit of the installed rfdiff (None outside a git checkout)."""
    import importlib.metadata
    import platform
    import subprocess

    import jax
    import rfdiff
    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(rfdiff.__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"versions": versions, "python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "jax_backend": jax.default_backend(),
            "jax_devices": [str(d) for d in jax.devices()], "x64_global": bool(jax.config.jax_enable_x64),
            "git_commit": commit}


def progress_bar(args, total: Optional[int], desc: str, unit: str = "it"):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, disable=getattr(args, "no_progress", False), file=sys.stderr,
                leave=False)


def guarded(main: Callable[[Optional[list]], int]) -> Callable[[Optional[list]], int]:
    """Wrap a command's ``main``: usage errors → one line, exit 2; Ctrl-C → one line, exit 130."""

    def wrapper(argv=None) -> int:
        try:
            return main(argv)
        except UsageError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as err:
            from rfdiff import io
            if not io.is_no_space(err):
                raise
            where = Path(err.filename).parent if err.filename else "the output folder"
            print(f"error: no space left on {where} (a result is written whole or not at all)", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted: nothing partial was written", file=sys.stderr)
            return EXIT_INTERRUPTED

    wrapper.__doc__ = main.__doc__
    return wrapper


@contextlib.contextmanager
def timer(store: dict, key: str):
    import time
    t0 = time.perf_counter()
    yield
    store[key] = time.perf_counter() - t0


def fmt(x, digits: int = 4) -> str:
    import math
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"
