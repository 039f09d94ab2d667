"""The ``rfdiff`` command: every study is a sub-command (``rfdiff run | figures | finite-size | beyond |
generation | table | large-p | maps | finite-d``); ``rfdiff help [command]`` and ``rfdiff --version``.

Only the chosen sub-command's module is imported, and each imports JAX, SciPy and matplotlib only
after its flags are parsed and checked: ``--version``, ``--help`` and flag errors answer at once.
"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {  # sub-command → (module of rfdiff_cli, what it does)
    "run": ("rfdiff_cli.rf_timescales", "the main job: one model, simulation and theory, τ_gen and τ_mem"),
    "figures": ("rfdiff_cli.figures", "the paper's figures, their verdicts and REPORT.md (a sweep)"),
    "finite-size": ("rfdiff_cli.finite_size", "how far the theory is from the finite-d model, and why (a sweep)"),
    "beyond": ("rfdiff_cli.beyond", "finite noise draws m, ridge, two classes, subspace data (a sweep)"),
    "generation": ("rfdiff_cli.generation", "sampling with RF scores: memorisation and quality vs τ (a sweep)"),
    "table": ("rfdiff_cli.table", "a table of timescales from saved runs, with any thresholds"),
    "large-p": ("rfdiff_cli.large_p", "τ_mem ∝ n at p ≫ n on the finite network, d up to 100 (a sweep)"),
    "maps": ("rfdiff_cli.maps", "where the theory obeys τ_mem ∝ ψ_n and τ_gen flat: local-exponent maps (a sweep)"),
    "finite-d": ("rfdiff_cli.finite_d", "the finite-d train-loss theory against the exact model: the ingredient table"),
}


def version() -> str:
    """The installed version, read from the package metadata (importing rfdiff would load JAX)."""
    import importlib.metadata
    try:
        return importlib.metadata.version("rfdiff")
    except importlib.metadata.PackageNotFoundError:   # a source tree that is not installed
        from rfdiff import __version__
        return __version__


def usage() -> str:
    lines = ["usage: rfdiff COMMAND [options]      (rfdiff help COMMAND, or rfdiff COMMAND --help: its options)", "",
             "commands:"]
    lines += [f"  {name:<13}{what}" for name, (_, what) in COMMANDS.items()]
    lines += [f"  {'help':<13}this list, or a command's options (rfdiff help run)",
              "", "options:", f"  {'--version':<13}print the version and exit", f"  {'-h, --help':<13}this list"]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:                                        # nothing asked: say what can be asked, exit 2
        print(usage(), file=sys.stderr)
        return 2
    first = argv[0]
    if first in ("--version", "-V"):
        print(f"rfdiff {version()}")
        return 0
    if first in ("-h", "--help") or (first == "help" and len(argv) == 1):
        print(usage())
        return 0
    if first == "help":
        if argv[1] not in COMMANDS:
            print(f"error: unknown command {argv[1]!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
            return 2
        argv = [argv[1], "--help"]
        first = argv[0]
    if first not in COMMANDS:
        print(f"error: unknown command {first!r}; commands: {', '.join(COMMANDS)} (rfdiff --help)", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[first][0])
    try:
        return module.main(argv[1:])
    except SystemExit as exc:                          # argparse's --help (0) and its flag errors (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)


if __name__ == "__main__":
    sys.exit(main())
