"""The ``rfdiff`` command: ``rfdiff run`` (the main job), ``rfdiff figures``, ``rfdiff table``, ``rfdiff --version``, …"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {  # sub-command → (module of rfdiff_cli / rfdiff_analysis, what it does)
    "run": ("rfdiff_cli.rf_timescales", "the main job: one model, simulation and theory, τ_gen and τ_mem"),
    "figures": ("rfdiff_cli.figures", "the paper's figures, the verdicts and figures/REPORT.md (a sweep)"),
    "table": ("rfdiff_analysis.timescales_table", "a table of timescales from saved runs, any thresholds"),
}


def main(argv=None) -> int:
    as_program = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):
        from rfdiff import __version__
        print(f"rfdiff {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = ["usage: rfdiff {" + ",".join(COMMANDS) + "} [options]   (rfdiff COMMAND --help for its options)", ""]
        lines += [f"  {name:<12}{what}" for name, (_, what) in COMMANDS.items()]
        lines += ["  --version   print the version"]
        bad = bool(argv) and argv[0] not in ("-h", "--help")
        print(("error: unknown command " + repr(argv[0]) + "\n" if bad else "") + "\n".join(lines),
              file=sys.stderr if bad else sys.stdout)
        return 2 if bad else 0
    module = importlib.import_module(COMMANDS[argv[0]][0])
    rc = module.main(argv[1:])
    if as_program and argv[0] == "run":        # the main job: skip the interpreter's teardown (0.2–0.3 s)
        from rfdiff_cli import common
        common.exit_now(rc)
    return rc


if __name__ == "__main__":
    sys.exit(main())
