"""rfdiff_cli/finite_size.py (rfdiff_cli.finite_size): flags and one run in its own process."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rfdiff import results
from rfdiff.pipelines import finite_size as fs

ROOT = Path(__file__).resolve().parents[2]


def test_flags_refused_by_name(capsys):
    from rfdiff_cli import finite_size as script
    with pytest.raises(SystemExit):
        script.parse_args(["--psi-p", "8,x"])
    assert "--psi-p needs comma-separated numbers" in capsys.readouterr().err
    for argv, flag in ((["--ds", "2,4"], "--ds"), (["--psi-ns", "0"], "--psi-ns"), (["--psi-p", "0"], "--psi-p"),
                       (["--t", "-1"], "--t"), (["--seed", "-1"], "--seed"), (["--workers", "0"], "--workers")):
        assert script.main(argv + ["--no-plot", "--no-progress"]) == 2
        assert capsys.readouterr().err.startswith(f"error: {flag}:")


def test_finite_size_script_smoke(tmp_path):
    """The script end to end on a tiny grid, in its own process (about 6 s)."""
    cmd = [sys.executable, "-m", "rfdiff_cli.finite_size", "--ds", "8,12", "--psi-ns", "4", "--serial",
           "--no-progress", "--out", str(tmp_path), "--figdir", str(tmp_path), "--name", "smoke"]
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "theory vs exact" in proc.stdout
    res, meta = results.load(tmp_path / "smoke", with_meta=True)
    assert isinstance(res, fs.FiniteSizeResult) and [r.d for r in res.rows] == [8, 12]
    assert meta["sweeps"][0]["computed"] == 2
    assert json.loads((tmp_path / "smoke.json").read_text())["result"]["seed"] == 1
    for ext in ("png", "pdf"):
        assert (tmp_path / f"finite_size.{ext}").stat().st_size > 0
