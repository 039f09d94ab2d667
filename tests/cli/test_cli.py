"""The ``rfdiff`` command (rfdiff_cli/cli.py, rfdiff_cli.cli): version, help, dispatch to the sub-commands."""
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


def test_version_as_module():
    proc = subprocess.run([sys.executable, "-m", "rfdiff_cli.cli", "-V"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"rfdiff {rfdiff.__version__}"


def test_help_lists_every_command(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in cli.COMMANDS) and "--version" in out


def test_unknown_command_is_refused(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out.lower()
