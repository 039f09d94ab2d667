"""The ``rfdiff`` command (rfdiff_cli/cli.py): every study a sub-command, help, version, instant flag errors."""
import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rfdiff
from rfdiff_cli import cli


def _console_script() -> str:
    """The installed ``rfdiff`` console script: next to this interpreter (a virtual environment), or on PATH."""
    beside = Path(sys.executable).with_name("rfdiff")
    found = str(beside) if beside.exists() else shutil.which("rfdiff")
    if found is None:
        pytest.skip("the rfdiff console script is not installed (pip install -e .)")
    return found


def test_version_in_its_own_process():
    proc = subprocess.run([_console_script(), "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"rfdiff {rfdiff.__version__}"


def test_every_study_is_a_subcommand():
    assert {"run", "figures", "finite-size", "beyond", "generation", "table"} <= set(cli.COMMANDS)


def test_bare_rfdiff_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert all(name in err for name in cli.COMMANDS) and "--version" in err and "help" in err


def test_help_and_help_command(capsys):
    assert cli.main(["--help"]) == 0 and "finite-size" in capsys.readouterr().out
    assert cli.main(["help"]) == 0 and "generation" in capsys.readouterr().out
    assert cli.main(["help", "run"]) == 0
    assert capsys.readouterr().out.startswith("usage: rfdiff run ")
    assert cli.main(["help", "nope"]) == 2 and "unknown command 'nope'" in capsys.readouterr().err


def test_unknown_command_is_refused(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def _parser(command):
    """The sub-command's argparse parser, caught where its parse_args builds it."""
    import importlib
    module = importlib.import_module(cli.COMMANDS[command][0])
    seen = {}
    real = argparse.ArgumentParser.parse_args

    def grab(self, args=None, namespace=None):
        seen["parser"] = self
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = grab
    try:
        with pytest.raises(SystemExit):
            module.parse_args(["x"] if command == "table" else [])
    finally:
        argparse.ArgumentParser.parse_args = real
    return seen["parser"]


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_help_names_its_prog_and_every_default(command, capsys):
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: rfdiff {command} ")
    parser = _parser(command)
    flat = " ".join(out.split())
    for action in parser._actions:
        d = action.default
        if not action.option_strings or d is None or d is False or d is argparse.SUPPRESS:
            continue
        shown = f"{d:g}" if isinstance(d, float) else str(d)
        assert f"default: {shown}" in flat or f"default {shown}" in flat, (command, action.option_strings, d)
    # a line is never cut inside a word: every word of the help text is whole on its line
    words = set(re.findall(r"[A-Za-z_]{4,}", " ".join(a.help or "" for a in parser._actions)))
    line_words = set(re.findall(r"[A-Za-z_]{4,}", out))
    assert words <= line_words, sorted(words - line_words)[:5]


@pytest.mark.parametrize("argv", [["--version"], ["run", "--p", "x"], ["figures", "--only", "nope"],
                                  ["beyond", "--bogus"], ["table", "--help"], []])
def test_version_help_and_flag_errors_load_no_jax(argv):
    """They answer before anything heavy is imported (JAX, SciPy, matplotlib, Dask take seconds)."""
    code = ("import sys\nfrom rfdiff_cli import cli\nrc = cli.main(%r)\n"
            "heavy = [m for m in ('jax', 'scipy', 'matplotlib', 'distributed') if m in sys.modules]\n"
            "print('HEAVY', heavy, rc)" % (argv,))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY [] " in proc.stdout, (proc.stdout, proc.stderr[-2000:])
    assert proc.stdout.strip().endswith(" 0") == (argv[:1] == ["--version"] or "--help" in argv)


def test_analysis_does_not_import_the_command_line():
    """rfdiff_analysis sits below rfdiff_cli: none of its modules imports the command line."""
    import rfdiff_analysis
    paths = list(Path(rfdiff_analysis.__file__).parent.glob("*.py"))
    assert len(paths) > 3
    for path in paths:
        assert not re.search(r"^\s*(from|import)\s+rfdiff_cli", path.read_text(), re.M), path.name
