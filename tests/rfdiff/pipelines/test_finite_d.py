"""rfdiff.pipelines.finite_d: the ingredient table of the finite-d train-loss theory (docs/theory.md §8.5) at a tiny size."""
import dataclasses
import json
import math

import numpy as np
import pytest

from rfdiff.pipelines import finite_d
from rfdiff.pipelines.finite_d import TAUS, Point, PointResult, Rung, ingredient_table, run_point, summarize

TINY = Rung(4, 4.0, 1.0, 0.1)          # p = 16, n = 4
pytestmark = pytest.mark.filterwarnings("ignore:U. Mehler expansion not converged")   # d = 4: 7e-8, not 1e-8


def test_point_is_the_exact_model_and_the_equivalent_on_numpys_draws(tmp_path):
    """W then X from numpy.random.default_rng(seed); exact and §8 curves as computed by hand; cached, then reloaded."""
    from rfdiff.dynamics import exact_dynamics
    from rfdiff.matrices import train_matrices
    from rfdiff.theory.finite_d import conditional_kernel, nugget, train_loss_de
    rng = np.random.default_rng(3)
    W, X = rng.standard_normal((16, 4)), rng.standard_normal((4, 4))
    fm = train_matrices(W, X, 0.1)
    taus = np.array(TAUS)
    exact = np.asarray(exact_dynamics(np.asarray(fm.U), np.asarray(fm.V), 0.1).curves(taus).train_loss)
    kc = conditional_kernel(X, 0.1, neuron_types=16)
    eta, w = nugget(X, 0.1, neuron_types=0)
    one = train_loss_de(taus, dataclasses.replace(kc, eta=eta, eta_weights=w), 16)

    res = run_point(Point(TINY, 3), cache=str(tmp_path))
    np.testing.assert_allclose(res.exact, exact, rtol=1e-12)
    np.testing.assert_allclose(res.de_single, one, rtol=1e-12)
    np.testing.assert_allclose(res.de_types, train_loss_de(taus, kc, 16), rtol=1e-12)
    assert res.taus == TAUS and all(0.0 < x <= 1.0 for x in res.exact)
    path = tmp_path / "finite_d_4_4_1_0.1_3.json"
    assert json.loads(path.read_text())["exact"] == list(res.exact)
    # a cached point is read, not recomputed (also a file of the older layout, with "finite_d" for "de_single")
    old = json.loads(path.read_text())
    old["finite_d"] = old.pop("de_single")
    path.write_text(json.dumps(old))
    import rfdiff.matrices
    rfdiff.matrices.train_matrices, real = None, rfdiff.matrices.train_matrices
    try:
        again = run_point(Point(TINY, 3), cache=str(tmp_path))
    finally:
        rfdiff.matrices.train_matrices = real
    assert again == res


def test_table_is_the_seed_mean_and_standard_error(monkeypatch):
    s, = ingredient_table([TINY], 2)
    pts = [run_point(Point(TINY, k)) for k in (0, 1)]
    assert s.seeds == 2 and s.rung == TINY
    assert s.exact[-1] == pytest.approx((pts[0].exact[-1] + pts[1].exact[-1]) / 2, rel=1e-14)
    assert s.exact_inf_se == pytest.approx(abs(pts[0].exact[-1] - pts[1].exact[-1]) / 2, rel=1e-12)
    assert len(s.theory) == len(s.norm_corrected) == len(s.de_types) == len(TAUS)
    monkeypatch.setattr(finite_d, "theory_curves", lambda rung: (np.ones(len(TAUS)), np.ones(len(TAUS))))
    assert math.isnan(summarize(TINY, pts[:1]).exact_inf_se)


@pytest.mark.parametrize("build, name", [
    (lambda: Rung(1, 4.0, 1.0, 0.1), "d"), (lambda: Rung(4, -1.0, 1.0, 0.1), "psi_p"),
    (lambda: Rung(4, 4.0, 0.1, 0.1), "psi_n"), (lambda: Rung(4, 4.0, 1.0, 0.0), "t"),
    (lambda: Point(TINY, -1), "seed"), (lambda: ingredient_table([TINY], 0), "seeds"),
    (lambda: ingredient_table([(4, 4.0, 1.0, 0.1)], 1), "rungs"),
    (lambda: summarize(TINY, [PointResult(Point(Rung(8, 4.0, 1.0, 0.1), 0), TAUS, (), (), ())]), "results")])
def test_bad_input_is_one_line_naming_the_parameter(build, name):
    with pytest.raises(ValueError) as e:
        build()
    msg = str(e.value)
    assert msg.startswith(name + " ") and "\n" not in msg


def test_large_kernels_take_the_inf_route_or_are_nan_and_not_cached(tmp_path, monkeypatch):
    """Above max_dim only τ → ∞ of §8 is computed (= the curve route's value); above max_dim_inf nothing, and nothing cached."""
    full = run_point(Point(TINY, 1))                                   # n(d+1) = 20: the curve route
    inf_only = run_point(Point(TINY, 1), cache=str(tmp_path), max_dim=10, max_dim_inf=20)
    assert inf_only.exact == full.exact
    assert inf_only.de_types[-1] == pytest.approx(full.de_types[-1], rel=1e-9)
    assert inf_only.de_single[-1] == pytest.approx(full.de_single[-1], rel=1e-9)
    assert all(math.isnan(x) for x in inf_only.de_types[:-1])
    none = run_point(Point(TINY, 2), cache=str(tmp_path), max_dim=10, max_dim_inf=10)
    assert all(math.isnan(x) for x in none.de_types + none.de_single) and math.isfinite(none.exact[-1])
    stored = json.loads((tmp_path / "finite_d_4_4_1_0.1_2.json").read_text())
    assert "de_types" not in stored and "exact" in stored
    # the summary averages §8 over the seeds where it exists, and says how many
    monkeypatch.setattr(finite_d, "theory_curves", lambda rung: (np.ones(len(TAUS)), np.ones(len(TAUS))))
    s = summarize(TINY, [inf_only, none])
    assert s.de_seeds == 1 and s.seeds == 2
    assert s.de_types[-1] == pytest.approx(inf_only.de_types[-1], rel=1e-14) and math.isnan(s.de_types[1])
    assert s.exact[-1] == pytest.approx((inf_only.exact[-1] + none.exact[-1]) / 2, rel=1e-14)
    assert s.exact_on_de_seeds == inf_only.exact[-1]
    with pytest.raises(ValueError, match="^max_dim_inf "):
        run_point(Point(TINY, 1), max_dim_inf=-1)


def test_ingredient_rungs_are_the_documented_sizes():
    assert [(r.d, r.p, r.n, r.t) for r in finite_d.INGREDIENT_RUNGS] == [(32, 2048, 128, 0.1), (64, 4096, 256, 0.1),
                                                                          (100, 6400, 400, 0.1)]


@pytest.mark.slow
@pytest.mark.parametrize("d, max_dim, printed", [
    (16, None, (0.2787, 0.0011, 0.2116, 0.2272, 0.2907, 0.2826)),
    (32, 0, (0.2549, 0.0007, 0.2116, 0.2195, 0.2563, 0.2546))])
def test_table_numbers(d, max_dim, printed):
    """The ψ_p = 64, ψ_n = 4, t = 0.1 rows d = 16 and 32 of docs/finite_size.md (five seeds), to their printed digits.

    Printed: exact L_train(∞) ± s.e., d → ∞ theory, norm spread, one nugget, neuron-norm types. At d = 32 the §8
    values come from the τ → ∞ route (max_dim = 0), equal to the table's curve route to 1e-9.
    """
    s, = ingredient_table([Rung(d, 64.0, 4.0, 0.1)], 5, max_dim=max_dim)
    got = (s.exact[-1], s.exact_inf_se, s.theory[-1], s.norm_corrected[-1], s.de_single[-1], s.de_types[-1])
    np.testing.assert_allclose(got, printed, rtol=0, atol=5.1e-5)
    assert s.de_seeds == 5
