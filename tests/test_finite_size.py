"""Finite-size study (experiments/finite_size.py): where the L_train theory's error comes from.

The theory (SPEC §4) is accurate for its own Gaussian-equivalent model, and its error against the
exact finite-d model shrinks as n grows at fixed ψ_p, ψ_n; the error is the Gaussian-equivalent
model's finite-d gap, not a defect of the equations.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("finite_size", ROOT / "experiments" / "finite_size.py")
finite_size = importlib.util.module_from_spec(spec)
spec.loader.exec_module(finite_size)


def test_finite_size_gap_shrinks_and_is_not_the_theory(tmp_path):
    """d ∈ {16, 32}, ψ_p = 64, ψ_n = 8, t = 0.1, seed 1 (about 25 s).

    Measured: theory vs exact 27.7 % → 16.0 % (slope −0.79 in n); theory vs the GE draw on the same
    W, X 2.5 % → 0.37 %. Asserted: slope in [−1.2, −0.5]; theory-vs-GE ≤ 0.2 × theory-vs-exact;
    GE-vs-exact within 3 points of theory-vs-exact (the gap is the GE model's).
    """
    rc = finite_size.main(["--ds", "16,32", "--psi-ns", "8", "--no-plot", "--no-progress",
                           "--out", str(tmp_path), "--figdir", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / "finite_size_s1.json").read_text())
    rows = sorted(res["rows"], key=lambda r: r["n"])
    assert [r["n"] for r in rows] == [128, 256]
    err = np.array([r["theory_vs_exact"] for r in rows])
    slope = np.log(err[1] / err[0]) / np.log(2.0)
    assert -1.2 < slope < -0.5, slope
    for r in rows:
        assert r["theory_vs_ge"] < 0.2 * r["theory_vs_exact"], r
        assert abs(r["ge_vs_exact"] - r["theory_vs_exact"]) < 0.03, r
    assert (tmp_path / "finite_size_s1.npz").exists()


def test_finite_size_gap_grows_with_p_at_fixed_n(tmp_path):
    """ψ_p-scan at d = 16, ψ_n = 4 (n = 64), t = 0.1, seed 1 (about 15 s).

    Measured (pytest's global float64 draws W, X differently from the script): GE draw vs exact
    3.2 % at ψ_p = 8 and 20.0 % at ψ_p = 32 (× 6.3; the script's draw: 1.5 % and 18.8 %), theory vs
    the GE draw 2.9 % / 4.9 %. Asserted: ratio ≥ 4, ψ_p = 8 gap ≤ 5 %, and the theory closer to the
    GE draw than the GE draw is to the exact model at ψ_p = 32.
    """
    rc = finite_size.main(["--ds", "16", "--psi-ns", "4", "--psi-p", "8,32", "--no-plot", "--no-progress",
                           "--out", str(tmp_path), "--figdir", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / "finite_size_s1.json").read_text())
    by_pp = {r["psi_p"]: r for r in res["rows"]}
    assert sorted(by_pp) == [8.0, 32.0] and {r["n"] for r in res["rows"]} == {64}
    small, big = by_pp[8.0], by_pp[32.0]
    assert small["ge_vs_exact"] < 0.05, small
    assert big["ge_vs_exact"] > 4 * small["ge_vs_exact"], (small, big)
    assert big["theory_vs_ge"] < 0.5 * big["ge_vs_exact"], big
    assert "vs_psi_p_over_n" in res["fits"]


def test_gap_decomposition_d24():
    """L_train(∞) parts at d = 24, ψ_p = 64, ψ_n = 4, t = 0.1 (about 10 s).

    Measured under pytest (the script's draw in brackets): exact 0.2654 (0.2668), Mehler order 1 only
    0.2757 (0.2775), slopes averaged over points 0.2498 (0.2532), mean's nonlinear part → i.i.d.
    0.1158 (0.1220), both 0.1965 (0.2051); theory (d → ∞) 0.2116. Asserted: the exact model is
    ≥ 10 % above the theory; averaging the slopes moves it towards the theory by 0.005 … 0.03; the
    surrogate closest to the Gaussian-equivalent model ("both") is within 10 % of the theory and
    closer to it than the exact model; the order-1 truncation changes L_train(∞) by ≤ 5 %.
    """
    r, _ = finite_size.decompose_unit({"d": 24, "psi_n": 4.0, "psi_p": 64.0, "t": 0.1, "seed": 1})
    assert r["exact"] > 1.10 * r["theory"], r
    assert 0.005 < r["exact"] - r["slopes_avg"] < 0.03, r
    assert abs(r["both"] / r["theory"] - 1) < 0.10, r
    assert abs(r["both"] - r["theory"]) < abs(r["exact"] - r["theory"]), r
    assert abs(r["order1"] / r["exact"] - 1) < 0.05, r


def test_finite_size_cli_validation():
    import pytest
    with pytest.raises(SystemExit):
        finite_size.parse_args(["--ds", "2,4"])
    with pytest.raises(SystemExit):
        finite_size.parse_args(["--psi-ns", "0"])
    with pytest.raises(SystemExit):
        finite_size.parse_args(["--psi-p", "8,x"])
    args = finite_size.parse_args(["--quick"])
    assert (32, 4.0, 64.0) in args.grid and (12, 4.0, 8.0) in args.grid
