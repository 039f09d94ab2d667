"""The examples run as written (each in its own process, from an empty folder), and the README's quick
start is the example file, line for line."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_quickstart() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return next(b for b in blocks if "import rfdiff" in b)


def test_readme_quick_start_is_the_example():
    body = (ROOT / "examples" / "quickstart.py").read_text().split('"""', 2)[2].strip()
    assert body == _readme_quickstart().strip()


def test_quickstart(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("simulation: τ_gen") and lines[1].startswith("theory: τ_gen")
    assert list(tmp_path.iterdir()) == [], "the quick start writes nothing"
