"""rfdiff_cli/figures.py (rfdiff_cli.figures, ``rfdiff figures``): flags, one figure end to end, the quick run.

The pieces it is made of are tested next to their modules: the fits and intervals in
tests/rfdiff/test_stats.py, the unit cache in tests/rfdiff/test_sweep.py, the units and summaries in
tests/rfdiff/pipelines/test_paper.py, the verdict rule in tests/rfdiff_analysis/test_verdict.py.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from rfdiff import results
from rfdiff.pipelines import paper

ROOT = Path(__file__).resolve().parents[2]


def _cmd(tmp_path, *extra):
    return [sys.executable, "-m", "rfdiff_cli.figures", "--quick", "--no-progress",
            "--out", str(tmp_path / "cache"), "--figdir", str(tmp_path / "figs"), *extra]


def test_cli_rejects_unknown_figure(tmp_path, capsys):
    from rfdiff_cli import figures
    assert figures.main(["--only", "nope", "--figdir", str(tmp_path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --only") and "procedure" in err
    f = tmp_path / "file"
    f.write_text("x")
    assert figures.main(["--only", "procedure", "--figdir", str(f), "--out", str(tmp_path)]) == 2
    assert "--figdir" in capsys.readouterr().err


def test_figure_names_need_no_jax_and_match_the_pipeline():
    from rfdiff_cli import figures
    assert figures.FIGURES == tuple(paper.FIGURES)


def test_outputs_default_to_the_current_folder_and_nothing_is_replaced(tmp_path, monkeypatch, capsys):
    """``figures --quick --only spectrum`` without --figdir never touches figures/ (the full report), writes below
    the current folder (never next to the installed package), and replaces nothing without --overwrite."""
    from rfdiff_cli import figures
    monkeypatch.chdir(tmp_path)
    args = figures.parse_args(["--quick", "--only", "spectrum"])
    assert args.figdir == "figures_quick" and not Path(args.out).is_absolute()
    assert figures.parse_args([]).figdir == "figures"
    (tmp_path / "figures_quick" / "manifest").mkdir(parents=True)
    (tmp_path / "figures_quick" / "manifest" / "spectrum.json").write_text("{}")
    assert figures.main(["--quick", "--only", "spectrum"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "spectrum.json" in err
    (tmp_path / "figures_quick" / "manifest" / "spectrum.json").unlink()
    (tmp_path / "figures_quick" / "REPORT.md").write_text("full report")
    assert figures.main(["--quick", "--only", "spectrum"]) == 2 and "REPORT.md" in capsys.readouterr().err
    assert (tmp_path / "figures_quick" / "REPORT.md").read_text() == "full report"


def test_a_quick_run_never_mixes_into_a_full_report(tmp_path, capsys):
    """A figure folder holding figures of another preset is refused before any computation."""
    from rfdiff_cli import figures
    figs = tmp_path / "figs"
    results.save({"figure": "adam", "preset": "full", "sizes": None, "command": "x", "files": [], "summary": None},
                 figs / "manifest" / "adam")
    assert figures.main(["--quick", "--only", "procedure", "--serial", "--figdir", str(figs),
                         "--out", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --figdir") and "another preset" in err and "full: adam" in err
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.json"))


def test_one_figure_end_to_end(tmp_path):
    """``--quick --only procedure --serial`` (the smallest figure: 6 units, about 25 s on 2 idle cores) writes the
    figure, its manifest entry, the report and its verdicts as data; a second run takes every unit from the cache."""
    proc = subprocess.run(_cmd(tmp_path, "--only", "procedure", "--serial"), capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figs = tmp_path / "figs"
    entry, meta = results.load(figs / "manifest" / "procedure", with_meta=True)
    assert entry["figure"] == "procedure" and entry["preset"] == "quick" and meta["versions"]["jax"]
    for name in entry["files"]:
        assert (figs / name).stat().st_size > 1000
    summary = entry["summary"]
    assert isinstance(summary, paper.ProcedureSummary) and entry["sizes"] == paper.PRESETS["quick"].procedure
    assert math.isfinite(summary.eta) and summary.gradient_flow_min_score_error > 0
    report = (figs / "REPORT.md").read_text()
    assert "| claim |" in report and "procedure" in report and "## In one screen" in report
    rows = json.loads((figs / "VERDICTS.json").read_text())
    assert {r["id"] for r in rows} >= {"procedure.floor.train", "procedure.floor.score"}
    n_units = len(paper.plan("procedure", paper.PRESETS["quick"]))
    again = subprocess.run(_cmd(tmp_path, "--only", "procedure", "--serial", "--no-report", "--overwrite"), capture_output=True,
                           text=True, timeout=300, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"0 computed, {n_units} from the cache" in again.stdout


@pytest.mark.slow
def test_quick_run_end_to_end(tmp_path):
    """Every figure at quick sizes (several minutes on 2 cores): files, manifest entries, key numbers, report, cache."""
    proc = subprocess.run(_cmd(tmp_path), capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figs = tmp_path / "figs"
    for figure in paper.FIGURES:
        entry = results.load(figs / "manifest" / figure)
        assert entry["files"] and entry["summary"], figure
        for name in entry["files"]:
            assert (figs / name).stat().st_size > 1000, name
    ms = results.load(figs / "manifest" / "min_score")["summary"].fit_simulation
    assert -1.2 < ms.slope.value < -0.2, ms            # the minimal score error falls with ψ_n
    report = (figs / "REPORT.md").read_text()
    assert "| claim |" in report and all(f in report for f in paper.FIGURES)
    json.loads((figs / "MANIFEST.json").read_text())
    again = subprocess.run(_cmd(tmp_path, "--no-report", "--overwrite"), capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 0 and "(0 computed" in again.stdout, again.stdout[-2000:]
