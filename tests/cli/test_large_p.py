"""rfdiff_cli/large_p.py (rfdiff large-p): flags, the estimate, and the command end to end."""
import os
import subprocess
import sys

import pytest

from large_p_fakes import result
from rfdiff import results, sweep
from rfdiff.pipelines import large_p as lp
from rfdiff.study import run_study


def fill_cache(root, preset, keep=lambda lab: True, **kw):
    """The cache entries of the units of ``preset`` that ``keep``, with synthetic results (what a sweep leaves)."""
    cache = sweep.Cache(root, "large_p").for_fn(run_study)
    for lab, u in lp.plan(preset).items():
        if keep(lab):
            cache.save(sweep.unit_key("large_p", u), u, result(lab, u, **kw), 1.0, "test", ())


def test_flags_refused_by_name(capsys, tmp_path):
    from rfdiff_cli import large_p as cmd
    for argv, flag in ((["--ds", "16,x"], "--ds"), (["--ds", "48"], "--ds"), 
                       (["--quick", "--preset", "full"], "--quick"), (["--workers", "0"], "--workers")):
        assert cmd.main(argv + ["--out", str(tmp_path / "c"), "--figdir", str(tmp_path)]) == 2
        assert capsys.readouterr().err.startswith(f"error: {flag}"), argv


def test_estimate_only_prints_plan_and_time(capsys, tmp_path):
    from rfdiff_cli import large_p as cmd
    assert cmd.main(["--estimate-only", "--serial", "--out", str(tmp_path / "c"), "--figdir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "plan: 240 units (full), 0 cached, 240 to run; estimated" in err and "h on 1 worker(s)" in err
    assert not list(tmp_path.glob("*.md"))


def test_command_end_to_end_from_the_cache(capsys, tmp_path):
    """A finished sweep in the cache: summary, figure and report, nothing recomputed; no overwrite without asking."""
    from rfdiff_cli import large_p as cmd
    fill_cache(tmp_path / "c", lp.PRESETS["quick"], alpha=1.2)
    argv = ["--quick", "--serial", "--no-progress", "--out", str(tmp_path / "c"), "--figdir", str(tmp_path)]
    assert cmd.main(argv) == 0
    err = capsys.readouterr().err
    assert "24 cached, 0 to run" in err
    text = (tmp_path / "REPORT_large_p.md").read_text()
    assert "| exact | 2 → 4 | 1.200" in text and "**disagree**" in text
    assert "local exponents (2→4) are 1.200" in text and "these data do not say whether" in text      # 2 rungs
    assert (tmp_path / "large_p.png").stat().st_size > 0
    S = results.load(tmp_path / "large_p_summary")
    assert isinstance(S, lp.LargePSummary) and len(S.labels) == 24
    assert cmd.main(argv) == 2
    assert "--name:" in capsys.readouterr().err


def test_partial_study_reports_what_did_not_run(capsys, tmp_path, monkeypatch):
    """The rung not run is costed and predicted (a stand-in theory: the real one costs seconds per ψ_n)."""
    import large_p_fakes
    from rfdiff import study
    from rfdiff.theory import finite_d
    from rfdiff_cli import large_p as cmd
    monkeypatch.setattr(study, "theory_sides", large_p_fakes.theory_sides)
    monkeypatch.setattr(finite_d, "finite_d_column", lambda *a, **k: {"train_loss_inf": finite_d.ColumnValue(0.5, "x")})
    fill_cache(tmp_path / "c", lp.PRESETS["quick"].restrict(ds=(8,)))
    assert cmd.main(["--quick", "--ds", "8", "--serial", "--no-plot", "--out", str(tmp_path / "c"),
                     "--figdir", str(tmp_path)]) == 0
    text = (tmp_path / "REPORT_large_p.md").read_text()
    assert "**Not in this summary:** 12 of 24 units (not run, or of a seed not complete; rungs ψ_p = 16, d = 12)" in text
    pred = text.split("## Predictions for the rungs not yet simulated")[1]
    assert "| 16 | 12 | 2 | 2000 | " in pred and "| 16 | 8 |" not in pred
    assert "predictions for 1 rung(s) not in the cache" in capsys.readouterr().err
    # workers sized for the whole plan, by the routes' memory estimates
    assert "Worker sizing for the whole plan" in text and "16 GB workers: largest unit" in text


def test_report_only_summarizes_the_complete_seeds(capsys, tmp_path):
    """A sweep cut short: d = 12 has seeds 0 and 1 complete and one unit of seed 2; nothing is computed."""
    from rfdiff_cli import large_p as cmd
    fill_cache(tmp_path / "c", lp.PRESETS["quick"],
               keep=lambda lab: lab.d == 8 or lab.seed < 2 or (lab.model == "ge" and lab.psi_n == 2.0))
    assert cmd.main(["--quick", "--report-only", "--no-plot", "--no-predictions", "--out", str(tmp_path / "c"),
                     "--figdir", str(tmp_path)]) == 0
    S = results.load(tmp_path / "large_p_summary")
    assert sorted({(lab.d, lab.seed) for lab in S.labels}) == [(8, 0), (8, 1), (8, 2), (12, 0), (12, 1)]
    assert "**Not in this summary:** 4 of 24 units" in (tmp_path / "REPORT_large_p.md").read_text()


@pytest.mark.slow
def test_quick_preset_runs_for_real(tmp_path):
    """The quick preset computed serially in its own process (minutes on a busy 2-core machine)."""
    cmd = [sys.executable, "-m", "rfdiff_cli.large_p", "--quick", "--serial", "--no-progress",
           "--out", str(tmp_path / "c"), "--figdir", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    S = results.load(tmp_path / "large_p_summary")
    assert {x.model for x in S.local_exponents} == {"exact", "ge"}
    assert all(abs(x.theory - 0.74) < 0.05 for x in S.local_exponents if x.quantity == "tau_mem")
