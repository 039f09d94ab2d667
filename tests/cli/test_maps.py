"""rfdiff_cli/maps.py (``rfdiff maps``): the sweep, the saved maps, the figure and the report section."""
import pytest

from rfdiff import results
from rfdiff.theory import maps
from rfdiff_cli import maps as cmd


@pytest.fixture
def tiny(monkeypatch):
    """Three spectral points at one ψ_p (about a second): the command's path without the full grids."""
    monkeypatch.setattr(maps, "preset_units", lambda name: maps.plan([0.1], [16.0], [1.0, 2.0, 4.0]))


def test_quick_run_writes_maps_figure_and_section(tmp_path, tiny, capsys):
    argv = ["--quick", "--serial", "--no-progress", "--no-compile-cache", "--out", str(tmp_path / "c"),
            "--figdir", str(tmp_path / "f")]
    assert cmd.main(argv) == 0
    for name in ("theory_maps.png", "theory_maps.pdf", "REPORT_maps.md"):
        assert (tmp_path / "f" / name).stat().st_size > 0
    saved = results.load(tmp_path / "c" / "theory_maps_quick")
    assert {m.quantity for m in saved} >= {"tau_mem_spectral", "tau_gen_spectral_exact"}
    text = (tmp_path / "f" / "REPORT_maps.md").read_text()
    assert "| 0.1 | τ_mem ∝ ψ_n (slope 1) | `tau_mem_spectral`" in text
    assert "3 computed" in capsys.readouterr().out
    # nothing is replaced without --overwrite (refused before any computation)
    assert cmd.main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_bad_tolerance_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        cmd.parse_args(["--tolerance", "0"])
    assert e.value.code == 2 and "--tolerance" in capsys.readouterr().err
