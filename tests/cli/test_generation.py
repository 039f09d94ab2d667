"""rfdiff_cli/generation.py (rfdiff_cli.generation): one run in its own process at tiny sizes."""
import subprocess
import sys
from pathlib import Path

from rfdiff import results
from rfdiff.pipelines import generation as G

ROOT = Path(__file__).resolve().parents[2]


def test_script_smoke(tmp_path):
    """``rfdiff_cli/generation.py --quick --serial`` at tiny sizes writes the summary and every figure."""
    cmd = [sys.executable, "-m", "rfdiff_cli.generation", "--quick", "--serial", "--no-progress",
           "--out", str(tmp_path), "--figures", str(tmp_path), "--d", "4", "--p", "32", "--n", "8,32",
           "--samples", "64", "--steps", "10", "--n-times", "2", "--name", "smoke"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "f_mem     n=8" in out.stdout and "early stopping c =" in out.stdout
    s, meta = results.load(tmp_path / "smoke", with_meta=True)
    assert isinstance(s, G.GenerationSummary) and s.study.d == 4 and list(s.n_values) == [8, 32]
    assert meta["summary"]["odd_activation"] is True and meta["sweeps"][0]["backend"] == "serial"
    names = ("fmem_quality", "collapse", "emm", "early_stopping", "mixture", "tau_mem", "activation")
    for name in names:
        for ext in ("png", "pdf"):
            assert (tmp_path / f"generation_{name}_quick.{ext}").stat().st_size > 0
