"""rfdiff.pipelines.paper: plans as data, labelled results, typed summaries; the ladder end to end at toy sizes."""
import dataclasses
import inspect
import math
from pathlib import Path

import numpy as np
import pytest

from rfdiff import sweep
from rfdiff.pipelines import paper
from rfdiff.results import Curves

ROOT = Path(__file__).resolve().parents[3]
QUICK = paper.PRESETS["quick"]
LADDER = dataclasses.replace(QUICK, ladder=(paper.Ladder((8, 12, 16), 64.0, (4.0,), 0.1, (0, 1, 2), (),
                                                         theory="largest_d"),))


def _run(figure, preset, tmp_path):
    plan = paper.plan(figure, preset)
    units = list(plan.values())
    rep = sweep.run_sweep(paper.run_unit, units, cache=sweep.Cache(tmp_path, kind="paper"))
    rep.raise_on_failure()
    return plan, paper.Results(figure, plan, dict(zip(plan, rep.results)))


def test_small_ladder_ge_control_has_no_correction_and_exact_model_has_one(tmp_path):
    """d ∈ {8, 12, 16}, ψ_p = 64, ψ_n = 4, 3 seeds: the fitted b of L_train(∞) = a + b/n.

    Measured: exact b ≈ +1.5 (interval excludes 0), GE control b consistent with 0; the GE
    extrapolation is within a few % of the d → ∞ theory.
    """
    _, res = _run("finite_size_scaling", LADDER, tmp_path)
    (blk,) = paper.summarize("finite_size_scaling", LADDER, res).blocks
    exact, ge = blk.fits["train_loss_inf"]["exact"], blk.fits["train_loss_inf"]["ge"]
    assert (blk.t, blk.psi_n, blk.psi_p) == (0.1, 4.0, 64.0)
    assert not exact.b.contains(0.0) and exact.b.value > 0
    assert ge.b.contains(0.0)
    assert abs(ge.a.value / blk.theory_d_inf["train_loss_inf"] - 1) < 0.05
    assert len(blk.points["exact"]) == 9 and len(blk.points["ge"]) == 9
    assert list(blk.theory_finite_d) == [16]         # theory="largest_d"


@pytest.mark.parametrize("figure", paper.FIGURES)
def test_every_figure_has_a_labelled_plan_at_both_sizes(figure):
    for preset in paper.PRESETS.values():
        plan = paper.plan(figure, preset)
        assert plan and all(isinstance(lab, paper.Label) for lab in plan), (figure, preset.name)
        assert all(sweep.unit_key("paper", u) for u in plan.values())
        assert paper.plan(figure, preset) == plan       # data: the same plan every time


@pytest.mark.parametrize("figure", paper.FIGURES)
def test_summarize_asks_first_for_a_planned_label_and_names_it(figure):
    """With no results, every figure's summary stops at its first request, which is a label of its own plan;
    the error names the figure and the label (a missing result is never skipped)."""
    for preset in paper.PRESETS.values():
        plan = paper.plan(figure, preset)
        with pytest.raises(paper.MissingResult) as err:
            paper.summarize(figure, preset, paper.Results(figure, plan, {}))
        assert err.value.label in plan
        assert str(err.value).startswith(f"{figure}: no result for {err.value.label.role}(")


def test_results_refuse_labels_outside_the_plan():
    plan = paper.plan("procedure", QUICK)
    stranger = paper.Label("study", t=0.1, d=16, psi_p=16.0, psi_n=4.0, seed=99)
    res = paper.Results("procedure", plan, {})
    with pytest.raises(paper.NotPlanned, match="not in the plan"):
        res[stranger]
    with pytest.raises(paper.NotPlanned, match="outside the plan"):
        paper.Results("procedure", plan, {stranger: object()})
    assert res.missing == list(plan) and len(res) == len(QUICK.procedure.noise_seeds) + 1
    with pytest.raises(ValueError, match="^results must be the Results"):
        paper.summarize("procedure", QUICK, {})
    with pytest.raises(ValueError, match="^results must be the Results"):
        paper.summarize("adam", QUICK, res)


def test_presets_are_frozen_and_validated():
    with pytest.raises(dataclasses.FrozenInstanceError):
        QUICK.adam.steps = 3
    with pytest.raises(ValueError, match="^ds must be an integer >= 1"):
        paper.Ladder((0, 8), 64.0, (4.0,), 0.1, (0,))
    with pytest.raises(ValueError, match="^seeds must be an integer >= 0"):
        paper.CurvesSizes(8, 16.0, (2.0,), 0.1, (-1,))
    with pytest.raises(ValueError, match="^psi_ns must be"):
        paper.SpectrumSizes(8, 16.0, (), 0.1)
    with pytest.raises(ValueError, match="^preset must be a Preset"):
        paper.plan("adam", {"adam": {}})
    with pytest.raises(ValueError, match="^figure must be one of"):
        paper.plan("nope", QUICK)


def test_no_unit_is_built_outside_the_plan():
    """Plots, report and command read labelled results; none of them builds a unit or re-derives a plan."""
    for rel in ("rfdiff_analysis/plots_paper.py", "rfdiff_analysis/report.py", "rfdiff_cli/figures.py"):
        src = (ROOT / rel).read_text()
        for built in ("Study(", "DensityUnit(", "TrainingUnit(", "paper._study", "paper.units", "RFConfig("):
            assert built not in src, (rel, built)
    summarizers = [f.summarize for f in paper._FIGURES.values()]
    for fn in summarizers:
        src = inspect.getsource(fn)
        assert "_study(" not in src and "Unit(" not in src, fn.__name__


def test_summaries_are_typed_and_frozen():
    """Every figure's summary type is a frozen dataclass (no dicts keyed by formatted strings)."""
    for fn in (f.summarize for f in paper._FIGURES.values()):
        cls = inspect.signature(fn).return_annotation
        cls = getattr(paper, cls) if isinstance(cls, str) else cls
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, fn.__name__


def test_collapse_spread_is_zero_for_identical_shapes():
    tau = np.logspace(-1, 6, 200)
    cs = [Curves(tau, np.ones_like(tau), 1 + 1 / (1 + (s / tau))) for s in (10.0, 100.0, 1000.0)]
    sp = paper.collapse_spread(cs, [10.0, 100.0, 1000.0])
    assert set(sp) == set(paper.COLLAPSE_FRACTIONS) and max(sp.values()) < 1e-2
    sp2 = paper.collapse_spread(cs, [10.0, 10.0, 10.0])
    assert min(sp2.values()) > 1.9


def test_phase_rule_is_one_function_per_side():
    assert paper.simulation_phase(0.05, 10.0, 1e3, 0.1) == paper.ARCHITECTURAL
    assert paper.simulation_phase(0.5, 1e4, 1e3, 0.1) == paper.DYNAMICAL
    assert paper.simulation_phase(0.5, math.nan, 1e3, 0.1) == paper.DYNAMICAL      # no τ_mem: not memorised
    assert paper.simulation_phase(0.5, 1e2, 1e3, 0.1) == paper.MEMORISATION
    assert paper.theory_phase(8.0, 4.0, 1e3, 1e2) == paper.ARCHITECTURAL
    assert paper.theory_phase(2.0, 4.0, 1e3, 1e2) == paper.MEMORISATION
    src = (ROOT / "rfdiff_analysis/plots_paper.py").read_text()
    assert "gap_thr" not in src and "final_gap" not in src       # the plot reads the summary's phases


TINY = paper.Preset(
    "tiny",
    ladder=(paper.Ladder((8, 10), 16.0, (4.0,), 0.1, (0, 1), ()),),
    spectrum=paper.SpectrumSizes(8, 16.0, (4.0,), 0.1),
    learning_curves=paper.CurvesSizes(8, 16.0, (2.0, 4.0), 0.1, (0, 1)),
    min_score=paper.MinScoreSizes(8, 16.0, (2.0, 4.0), 0.1, (0, 1)),
    sigma_x=paper.SigmaXSizes(8, 16.0, (2.0, 4.0), 0.1, (0.5,), (0,)),
    adam=paper.AdamSizes(4, 8.0, (2.0, 4.0), 0.1, 1e-2, 300, 0.3, (0, 1)),
    scaling=paper.ScalingSizes(4, 64, (8, 12), 0.1, (0, 1), 8, (32, 64)),
    heatmap=paper.HeatmapSizes(4, (1.0, 4.0), (4.0, 16.0), 0.1, (1e3,)),
    phase=paper.PhaseSizes((1e2, 1e3), 0.1),
    procedure=paper.ProcedureSizes(8, 4.0, 2.0, 0.1, 100, 1e-2, 8, 8, 2))


class _Recording(paper.Results):
    def __init__(self, *a):
        super().__init__(*a)
        self.asked = []

    def __getitem__(self, label):
        self.asked.append(label)
        return super().__getitem__(label)


@pytest.mark.slow
def test_every_summary_reads_only_planned_labels_end_to_end(tmp_path):
    """At tiny sizes every figure runs, is summarised from its labelled results alone, and asks only for labels of
    its own plan (each of which it reads)."""
    plans = {f: paper.plan(f, TINY) for f in paper.FIGURES}
    units = {sweep.unit_key("paper", u): u for plan in plans.values() for u in plan.values()}
    rep = sweep.run_sweep(paper.run_unit, list(units.values()), cache=sweep.Cache(tmp_path, kind="paper"))
    rep.raise_on_failure()
    got = dict(zip(rep.keys, rep.results))
    for f, plan in plans.items():
        res = _Recording(f, plan, {lab: got[sweep.unit_key("paper", u)] for lab, u in plan.items()})
        summary = paper.summarize(f, TINY, res)
        assert dataclasses.is_dataclass(summary)
        assert set(res.asked) <= set(plan), f
        assert set(res.asked) == set(plan), (f, set(plan) - set(res.asked))
