"""rfdiff_analysis.plots_maps and report_maps: the figure and the report section of the local-exponent maps."""
import math

import numpy as np
import pytest

from rfdiff.theory import maps
from rfdiff_analysis import plots_maps, report_maps


def _maps():
    pts = []
    for t in (0.01, 0.1):
        for pp in (8.0, 32.0, 128.0):
            for pn in (1.0, 2.0, 4.0, 16.0, 64.0):
                if pn <= pp / 2:
                    # slope in ψ_n: 1 below ψ_n = 4, then 0.5 (a law that holds only at small ψ_n)
                    tm = pn if pn <= 4 else 4.0 * (pn / 4) ** 0.5
                    pts.append(maps.MapPoint(t, pp, pn, True, tm * pp, 10.0, tm, 3.0, tm, 3.0))
    return maps.assemble(pts)


def test_section_states_the_region_as_numbers():
    ms = _maps()
    text = report_maps.section(ms, tolerance=0.05)
    m = next(m for m in ms if m.t == 0.1 and m.quantity == "tau_mem")
    r = report_maps.region(m, 0.05)
    # ψ_n = 1 is left out for τ_mem (n = d); the law holds on the short row ψ_p = 8 only, where no bend is seen
    assert np.isnan(m.values[:, 0]).all() and np.isfinite(next(x for x in ms if x.quantity == "tau_gen").values[0, 0])
    assert r == {"points": 2, "judged": 9, "psi_p": (8.0, 8.0), "psi_n": (2.0, 4.0)}
    assert report_maps.widest_run(m, 0.05) == (8.0, 2.0, 4.0)
    assert "| 0.1 | τ_mem ∝ ψ_n (slope 1) | `tau_mem`" in text and "| 2 – 4 | 8: 2 – 4 |" in text
    assert "ψ_p = 8: holds at ψ_n ∈ 2–4 " in text and "ψ_p = 32: holds at ψ_n ∈ — " in text
    g = next(m for m in ms if m.t == 0.1 and m.quantity == "tau_gen")
    assert report_maps.region(g, 0.05)["points"] == int(np.isfinite(g.slope).sum())


def test_figure_written(tmp_path):
    files = plots_maps.draw(_maps(), tmp_path / "theory_maps")
    assert [f.suffix for f in files] == [".png", ".pdf"] and all(f.stat().st_size > 0 for f in files)


def test_outline_is_the_boundary_of_the_inside_cells():
    inside = np.array([[True, True], [False, True]])
    e = np.array([0.0, 1.0, 2.0])
    segs = {tuple(map(tuple, s)) for s in plots_maps._outline(inside, e, e)}
    # an L of three unit cells: perimeter 8 unit segments
    assert len(segs) == 8 and ((0.0, 1.0), (1.0, 1.0)) in segs and ((1.0, 1.0), (1.0, 2.0)) in segs


def test_grid_error_of_theorem_32_is_small_on_a_fine_grid():
    """Closed-form Theorem 3.2 values on a fine ψ_n grid: finite differences recover the exact exponent."""
    from rfdiff.theory.constants import ge_constants
    c = ge_constants("tanh", 0.1, 1.0)
    pps, pns = np.array([1e3, 1e4]), np.geomspace(1.5, 400, 40)
    vals = np.array([[pp / (c.delta * (c.s2 + c.v2 * (1 - math.sqrt(pp / pn)) ** 2)) if pn <= pp / 2 else np.nan
                      for pn in pns] for pp in pps])
    m = maps.TheoryMap(0.1, "tau_mem_asymptotic", "", 1.0, pps, pns, vals, np.full(vals.shape, np.nan))
    step, med, q90, mx, _ = report_maps.grid_error(m)
    assert step == pytest.approx(np.log10(pns[1] / pns[0])) and mx < 0.01
    assert report_maps.grid_error(m, 3)[3] > mx
