"""rfdiff_analysis/report.py: rows from typed summaries, failed extrapolations, one preset per report, its folder named."""
import pytest

from rfdiff import results
from rfdiff.pipelines import paper
from rfdiff.stats import Estimate, FiniteSizeFit
from rfdiff_analysis import report


def _fit(a):
    return FiniteSizeFit(Estimate(a, a - 0.1, a + 0.1), Estimate(1.0, 0.5, 1.5), None, (32, 128), 9, 0.01, 0.5)


def _ladder(tau_mem_a):
    qs = paper.LADDER_QUANTITIES
    fits = {q: {"exact": _fit(tau_mem_a if q == "tau_mem" else 1.0), "ge": _fit(1.0)} for q in qs}
    pts = {"exact": (paper.LadderPoint(32, 8, 0, {q: 1.0 for q in qs}),), "ge": ()}
    blk = paper.LadderBlock(0.1, 64.0, 4.0, pts, fits, {q: 1.0 for q in qs}, {})
    return paper.LadderSummary((blk,))


def _entry(figure, preset, summary):
    return {"figure": figure, "preset": preset, "sizes": None, "command": "x", "files": [], "summary": summary}


def test_negative_extrapolation_is_flagged_not_judged():
    rows = report.rows_from({"finite_size_scaling": _entry("finite_size_scaling", "quick", _ladder(-300.0))})
    (tm,) = [r for r in rows if r.id.endswith("tau_mem.d_inf")]
    assert report.FAILED_EXTRAPOLATION in tm.verdict_text
    assert "agree" not in tm.verdict_text and "inconclusive" not in tm.verdict_text
    others = [r for r in rows if not r.id.endswith("tau_mem.d_inf")]
    assert others and all(report.FAILED_EXTRAPOLATION not in r.verdict_text for r in others)
    (ok,) = [r for r in report.rows_from({"finite_size_scaling": _entry("finite_size_scaling", "quick",
                                                                        _ladder(1.02))}) if r.id.endswith("tau_mem.d_inf")]
    assert report.FAILED_EXTRAPOLATION not in ok.verdict_text
    assert ok.verdict_text.startswith(("**agree**", "**disagree**", "*inconclusive*"))


def test_report_refuses_mixed_presets_and_names_its_folder(tmp_path):
    man = tmp_path / "manifest"
    results.save(_entry("finite_size_scaling", "quick", _ladder(1.0)), man / "finite_size_scaling")
    out = report.write_report(tmp_path)
    text = out.read_text()
    assert str((tmp_path / "manifest").resolve()) in text and "the quick preset" in text
    report.check_one_preset(tmp_path, "quick")
    with pytest.raises(report.MixedPresets, match="another preset"):
        report.check_one_preset(tmp_path, "full")
    results.save(_entry("spectrum", "full", paper.SpectrumSummary(())), man / "spectrum")
    with pytest.raises(report.MixedPresets, match="full: spectrum; quick: finite_size_scaling"):
        report.write_report(tmp_path)
    assert report.main([str(tmp_path)]) == 2


def test_report_diff_lists_changed_numbers_only():
    from rfdiff_analysis import report_diff
    head = "# R\n\n## Claims\n\n| claim | paper | theory | simulation (interval) | d → ∞ extrapolation | verdict | procedure |\n|---|---|---|---|---|---|---|\n"
    a = head + "| x at n = 32 | 1 | 0.5 | 0.51 [0.4, 0.6] | — | **agree**: ok | p |\n| y | 0 | 1 | 2 | — | — | p |\n"
    b = head + "| x at n = 32 | 1 | 0.5 | 0.53 [0.4, 0.6] | — | **agree**: ok | p |\n| y | 0 | 1 | 2 | — | — | p |\n"
    assert report_diff.diff(a, a) == []
    (line,) = report_diff.diff(a, b)
    assert "simulation: 0.51 [0.4, 0.6] → 0.53 [0.4, 0.6]" in line and line.startswith("x at n = 32")
    assert report_diff.diff(a, head)[0].startswith("only in the old report")


def test_rows_without_a_verdict_say_why_instead_of_inconclusive():
    """A point estimate (or < 5 seeds) gets "no verdict (…)" from the rule; the row must show that, not *inconclusive*."""
    from rfdiff_analysis import verdict
    v = verdict.judge(Estimate(0.36), 0.48, 0.02)
    assert not v.judged
    row = report.Row("x", "g", "claim", "p", "—", "t", "—", "s", v)
    assert row.verdict_text.startswith("*no verdict (point)*") and "inconclusive" not in row.verdict_text
    judged = report.Row("x", "g", "claim", "p", "—", "t", "—", "s",
                        verdict.judge(Estimate(1.0, 0.99, 1.01, n=5, method="mean over 5 seeds"), 1.0, 0.1))
    assert judged.verdict_text.startswith("**agree**")
