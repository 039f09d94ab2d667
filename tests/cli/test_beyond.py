"""rfdiff_cli/beyond.py (rfdiff_cli.beyond): flags and one run in its own process."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rfdiff import results
from rfdiff.pipelines import beyond

ROOT = Path(__file__).resolve().parents[2]


def test_flags_refused_by_name(capsys):
    from rfdiff_cli import beyond as script
    with pytest.raises(SystemExit):
        script.parse_args(["--parts", "1,5"])
    assert "--parts must be a subset" in capsys.readouterr().err
    assert script.parse_args(["--parts", "2"]).parts == {1, 2}
    for argv, flag in ((["--t", "0"], "--t"), (["--seed", "-2"], "--seed"), (["--mu-norm", "-1"], "--mu-norm")):
        assert script.main(argv + ["--no-plot", "--no-progress"]) == 2
        assert capsys.readouterr().err.startswith(f"error: {flag}:")


def test_beyond_script_smoke(tmp_path):
    """The script end to end at its smallest (--quick) sizes, parts 3 and 4, in its own process (about 6 s)."""
    cmd = [sys.executable, "-m", "rfdiff_cli.beyond", "--quick", "--parts", "3,4", "--serial",
           "--no-progress", "--out", str(tmp_path), "--figdir", str(tmp_path), "--name", "smoke"]
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[3] variance of class 1" in proc.stdout and "[4] D/d" in proc.stdout
    res, meta = results.load(tmp_path / "smoke", with_meta=True)
    assert isinstance(res, beyond.BeyondResult) and res.parts == (3, 4)
    assert len(res.classes) == 6 and len(res.subspace) == 4 and meta["sweep"]["computed"] == 10
    for name in ("classes", "subspace"):
        assert (tmp_path / f"beyond_{name}_quick.png").stat().st_size > 0
    assert not (tmp_path / "beyond_finite_m_quick.png").exists()
