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
