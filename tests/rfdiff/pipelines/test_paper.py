"""rfdiff.pipelines.paper: the finite-size ladder end to end at toy sizes, and the unit lists of every figure."""
import numpy as np
import pytest

from rfdiff import sweep
from rfdiff.pipelines import paper

LADDER = {"ladder": [dict(ds=(8, 12, 16), psi_p=64.0, psi_ns=(4.0,), t=0.1, seeds=(0, 1, 2), extra_seeds=(),
                          theory="largest_d")]}


def test_small_ladder_ge_control_has_no_correction_and_exact_model_has_one(tmp_path):
    """d ∈ {8, 12, 16}, ψ_p = 64, ψ_n = 4, 3 seeds: the fitted b of L_train(∞) = a + b/n.

    Measured: exact b ≈ +1.5 (interval excludes 0), GE control b consistent with 0; the GE
    extrapolation is within a few % of the d → ∞ theory.
    """
    units = paper.units("finite_size_scaling", LADDER)
    rep = sweep.run_sweep(paper.run_unit, units, cache_dir=tmp_path, cluster=sweep.Cluster(serial=True), kind="paper")
    rep.raise_on_failure()
    got = dict(zip(rep.keys, rep.results))
    S = paper.summarize("finite_size_scaling", LADDER, lambda u: got.get(sweep.unit_key("paper", u)))
    blk = S["t=0.1,psi_n=4"]
    exact, ge = blk["fits"]["train_loss_inf"]["exact"], blk["fits"]["train_loss_inf"]["ge"]
    print("exact", exact.b, "ge", ge.b, "theory", blk["theory_d_inf"]["train_loss_inf"], "ge a", ge.a)
    assert not exact.b.contains(0.0) and exact.b.value > 0
    assert ge.b.contains(0.0)
    assert abs(ge.a.value / blk["theory_d_inf"]["train_loss_inf"] - 1) < 0.05
    assert len(blk["points"]["exact"]) == 9 and len(blk["points"]["ge"]) == 9


@pytest.mark.parametrize("figure", paper.FIGURES)
def test_every_figure_has_units_at_both_sizes(figure):
    for mode in ("quick", "full"):
        us = paper.units(figure, paper.PRESETS[mode])
        assert us and all(sweep.unit_key("paper", u) for u in us), (figure, mode)


def test_collapse_spread_is_zero_for_identical_shapes():
    from rfdiff.results import Curves
    tau = np.logspace(-1, 6, 200)
    cs = [Curves(tau, np.ones_like(tau), 1 + 1 / (1 + (s / tau))) for s in (10.0, 100.0, 1000.0)]
    sp = paper.collapse_spread(cs, [10.0, 100.0, 1000.0])
    assert max(sp.values()) < 1e-2
    sp2 = paper.collapse_spread(cs, [10.0, 10.0, 10.0])
    assert min(sp2.values()) > 1.9
