"""Finite-d theory of the train loss (docs/theory.md §8): d → ∞ reduction and comparison with the exact model."""
import math

import numpy as np
import pytest

from rfdiff.theory import predict
from rfdiff.theory.finite_d import (conditional_kernel, gaussian_equivalent_kernel, nugget, predict_finite_d,
                                    train_loss_de)

TAUS = np.array([10.0, 100.0, 1e3, 1e4, 1e5, np.inf])


def test_gaussian_equivalent_reduction_recovers_theorem_3_1():
    """With the d → ∞ (Lemma C.1) kernel, the §8 equivalent is Theorem 3.1's train-loss curve (§4.6), all τ."""
    d, psi_p, psi_n, t = 100, 8, 2, 0.1
    th = predict("tanh", t, psi_p, psi_n, taus=TAUS, test_loss=False).curves.train_loss
    X = np.random.default_rng(0).standard_normal((psi_n * d, d))
    de = train_loss_de(TAUS, gaussian_equivalent_kernel(X, t, sigma_x2=1.0), psi_p * d)
    # measured: |rel| <= 0.0027 at d = 100 (two draws), <= 0.0008 at d = 200: the X-draw fluctuation
    np.testing.assert_allclose(de, th, rtol=6e-3)


def test_train_loss_de_limits_and_monotone():
    """L(0) = 1, L decreases in τ and reaches L(∞) = 1 − g(0) (docs/theory.md §8.3)."""
    X = np.random.default_rng(1).standard_normal((16, 8))
    kc = conditional_kernel(X, 0.1)
    taus = np.concatenate([[0.0], np.logspace(-1, 8, 25), [np.inf]])
    L = train_loss_de(taus, kc, 256)
    assert L[0] == 1.0
    assert np.all(np.diff(L) <= 1e-9)
    assert L[-2] == pytest.approx(L[-1], rel=1e-6)
    assert 0.0 < L[-1] < 1.0
    assert kc.beta.sum() == pytest.approx(8.0, rel=1e-10)


def test_nugget_types_average_to_the_single_nugget_at_large_d():
    """The neuron-norm types of η concentrate on r = 1 as d grows (‖w‖²/d → 1), docs/theory.md §8.2."""
    X = np.random.default_rng(2).standard_normal((8, 400))
    eta, w = nugget(X, 0.1, neuron_types=16)
    eta1, _ = nugget(X, 0.1, neuron_types=0)
    assert w.sum() == pytest.approx(1.0)
    assert float(eta @ w) == pytest.approx(float(eta1[0]), rel=5e-3)


@pytest.mark.slow
def test_finite_d_moves_the_train_loss_towards_the_exact_model_d8():
    """At d = 8, ψ_p = 64, ψ_n = 4, t = 0.1 (one seed) the §8 train loss is far closer to the exact one than Theorem 3.1.

    Measured over 5 seeds: exact 0.3428 ± 0.0048, §8 one nugget 0.3498 (+2.0 %), with neuron-norm
    types 0.3189 (−7.0 %), Theorem 3.1 0.2116 (−38 %).
    """
    from rfdiff.dynamics import exact_dynamics
    from rfdiff.matrices import train_matrices
    d, psi_p, psi_n, t = 8, 64, 4, 0.1
    rng = np.random.default_rng(0)
    W = rng.standard_normal((psi_p * d, d))
    X = rng.standard_normal((psi_n * d, d))
    fm = train_matrices(W, X, t)
    exact = float(exact_dynamics(np.asarray(fm.U), np.asarray(fm.V), t).curves(np.array([np.inf])).train_loss[0])
    de1 = train_loss_de([np.inf], conditional_kernel(X, t, neuron_types=0), psi_p * d)[0]
    th = predict("tanh", t, psi_p, psi_n, test_loss=False).train_loss_inf
    assert abs(de1 / exact - 1) < 0.06
    assert abs(de1 / exact - 1) < 0.25 * abs(th / exact - 1)


def test_predict_finite_d_returns_prediction_with_same_fields():
    """predict_finite_d returns a Prediction whose train loss is §8's and whose other fields are §4.5's."""
    p = predict_finite_d("tanh", 0.1, 16.0, 2.0, d=8, seeds=(0, 1), taus=np.array([10.0, 1e3, np.inf]),
                         test_loss=False)
    assert p.d == 8
    assert p.curves.train_loss.shape == (3,)
    assert p.train_loss_inf == pytest.approx(p.curves.train_loss[-1], rel=1e-9)
    assert "docs/theory.md §8" in p.curves.method
    assert math.isfinite(p.lambda_mem)
    with pytest.raises(ValueError, match="d"):
        predict_finite_d(d=64, psi_n=32.0)


def _exact_and_de(d, psi_p, psi_n, t, seeds):
    """Seed means of L_train(∞): exact, §8 one nugget, §8 neuron-norm types (the table's pipeline and draws)."""
    from rfdiff.pipelines.finite_d import Point, Rung, run_point
    res = [run_point(Point(Rung(d, psi_p, psi_n, t), s)) for s in seeds]
    return tuple(np.mean([getattr(r, k)[-1] for r in res]) for k in ("exact", "de_single", "de_types"))


@pytest.mark.slow
@pytest.mark.parametrize("psi_n, tol_one, tol_types", [(4, 0.06, 0.03), (8, 0.07, 0.04)])
def test_matches_exact_model_d16(psi_n, tol_one, tol_types):
    """Ladder rungs d = 16, ψ_p = 64, t = 0.1, 5 seeds (docs/finite_size.md, finite-d section).

    Measured L_train(∞) (rfdiff finite-d, same draws): ψ_n = 4: exact 0.2787, one nugget +4.3 %,
    neuron-norm types +1.4 %, Theorem 3.1 −24 %; ψ_n = 8: exact 0.4084, +4.7 %, +3.3 %, −15 %.
    """
    ex, one, typ = _exact_and_de(16, 64, psi_n, 0.1, range(5))
    th = predict("tanh", 0.1, 64, psi_n, test_loss=False).train_loss_inf
    assert abs(one / ex - 1) < tol_one
    assert abs(typ / ex - 1) < tol_types
    assert abs(one / ex - 1) < 0.35 * abs(th / ex - 1)


# ---------------------------------------------------------------------------------------------------------------
# the τ → ∞ route, the dense kernel, predict(..., finite_d=True) and the report column

from hypothesis import given, settings, strategies as st  # noqa: E402

from rfdiff.theory import finite_d as FD  # noqa: E402


def _kernel_by_einsum(X, t):
    """K of docs/theory.md §8.2 written out with four-index einsums (the reference the in-place build must equal)."""
    n, d = X.shape
    K = FD.kernel_matrix(X, t)
    from numpy.polynomial.hermite_e import hermegauss
    from rfdiff.activations import get_activation
    act = get_activation("tanh")
    zq, wq = hermegauss(96)
    wq = wq / wq.sum()
    dl = -math.expm1(-2 * t)
    s = math.sqrt(dl)
    xt = math.exp(-t) * X
    al2 = np.sum(xt * xt, axis=1) / d
    gam, _ = FD._smoothed(act, 15, np.zeros(n), np.sqrt(al2 + dl), zq, wq)
    rho = xt @ xt.T / d
    fact = np.cumprod(np.concatenate([[1.0], np.arange(1, 13)]))
    gd, _ = FD._smoothed(act, 3, np.sqrt(al2)[:, None] * zq[None, :], s, zq, wq)
    A = {}
    for k, l in [(0, 0), (1, 1), (0, 2), (3, 1), (1, 3), (2, 2)]:
        a = sum(np.outer(gam[k + j], gam[l + j]) * rho ** j / fact[j] for j in range(13))
        a[np.diag_indices(n)] = (gd[k] * gd[l]) @ wq
        A[k, l] = a
    R = np.empty_like(K)
    R[:n, :n] = A[0, 0] / n
    R[:n, n:] = ((A[1, 1][:, :, None] * xt[:, None, :] + A[0, 2][:, :, None] * xt[None, :, :]) * (s / (n * d))).reshape(n, -1)
    R[n:, :n] = R[:n, n:].T
    K11 = np.einsum("uv,ab->uavb", A[1, 1], np.eye(d))
    K11 += (np.einsum("uv,ua,ub->uavb", A[3, 1], xt, xt) + np.einsum("uv,ua,vb->uavb", A[2, 2], xt, xt)
            + np.einsum("uv,va,ub->uavb", A[2, 2], xt, xt) + np.einsum("uv,va,vb->uavb", A[1, 3], xt, xt)) / d
    R[n:, n:] = K11.reshape(n * d, n * d) * (dl / (n * d))
    return K, R


def test_kernel_matrix_is_the_four_index_formula():
    """The point-by-point build of K equals the einsum form of docs/theory.md §8.2 (and is symmetric)."""
    X = np.random.default_rng(4).standard_normal((7, 5))
    K, R = _kernel_by_einsum(X, 0.1)
    np.testing.assert_allclose(K, R, rtol=0, atol=1e-13 * np.abs(R).max())
    np.testing.assert_allclose(K, K.T, rtol=0, atol=1e-15 * np.abs(K).max())


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2 ** 16), n=st.integers(4, 24), d=st.integers(2, 8), log2_p=st.integers(5, 11),
       t=st.sampled_from([0.01, 0.1, 1.0]), types=st.sampled_from([0, 16]))
def test_inf_route_equals_the_eigenpair_route(seed, n, d, log2_p, t, types):
    """train_loss_inf_de (eigenvalues + one Cholesky solve) = train_loss_de at τ = ∞ (eigenpairs), docs/theory.md §8.3.

    Measured: relative difference ≤ 3e-13 at n = 24, d = 6, p = 96 … 1536.
    """
    X = np.random.default_rng(seed).standard_normal((n, d))
    p = 2 ** log2_p
    a = train_loss_de([np.inf], conditional_kernel(X, t, neuron_types=types), p)[0]
    b = FD.train_loss_inf_de(X, t, p, neuron_types=types)
    assert b == pytest.approx(a, rel=1e-9)
    both = FD.train_loss_inf_de(X, t, p, neuron_types=(types, 0))
    assert both[0] == pytest.approx(b, rel=1e-13)


def test_predict_finite_d_switch_dispatches(monkeypatch):
    """rfdiff.predict(..., d=d, finite_d=True) is predict_finite_d with the same arguments; bad input fails first."""
    import rfdiff
    seen = {}
    monkeypatch.setattr(FD, "predict_finite_d", lambda *a, **k: seen.update(args=a, kw=k) or "finite-d")
    taus = np.array([1.0, np.inf])
    assert rfdiff.predict("tanh", 0.2, 16.0, 2.0, d=8, sigma_x2=2.0, taus=taus, test_loss=False, finite_d=True) == "finite-d"
    assert seen["args"] == ("tanh", 0.2, 16.0, 2.0)
    assert seen["kw"]["d"] == 8 and seen["kw"]["sigma_x2"] == 2.0 and seen["kw"]["taus"] is taus
    assert seen["kw"]["test_loss"] is False
    seen.clear()
    kw = dict(activation="tanh", t=0.1, psi_p=16.0, psi_n=2.0, d=8, test_loss=False)
    for bad, name in [(dict(d=None), "d"), (dict(atoms=[(1.0, 1.0)]), "atoms"), (dict(test_method="ge"), "test_method")]:
        with pytest.raises(ValueError, match=f"^{name}"):
            rfdiff.predict(**{**kw, **bad}, finite_d=True)
    assert not seen


def test_finite_d_column_above_the_limit_is_nan_and_never_computed(monkeypatch):
    """Above max_dim the column's train loss is NaN with the size and cost, without building the kernel (docs/theory.md §8.3)."""
    from rfdiff.theory import curves
    real = curves.predict
    monkeypatch.setattr(curves, "predict", lambda *a, d=None, **k: real(*a, **k))      # the cheap d → ∞ spectrum
    monkeypatch.setattr(FD, "train_loss_inf_de", lambda *a, **k: pytest.fail("computed above the limit"))
    big = FD.finite_d_column("tanh", 0.1, 64.0, 4.0, 100, max_dim=6000)
    assert tuple(big) == FD.COLUMN_QUANTITIES
    assert math.isnan(big["train_loss_inf"].value)
    assert "40400 > 6000" in big["train_loss_inf"].source and "GiB" in big["train_loss_inf"].source
    assert math.isfinite(big["lambda_mem"].value) and "§4.5" in big["lambda_mem"].source
    value, source = big["lambda_mem"]                       # a (value, source) pair, as a report row unpacks it
    assert (value, source) == (big["lambda_mem"].value, big["lambda_mem"].source) and big["lambda_mem"][0] == value
    for q in ("test_loss_inf", "tau_mem", "tau_gen", "min_score_error"):
        assert math.isnan(big[q].value) and "not predicted" in big[q].source
    with pytest.raises(ValueError, match="^seeds"):
        FD.finite_d_column(seeds=())
    with pytest.raises(ValueError, match="^max_dim"):
        FD.finite_d_column(max_dim=0)


@pytest.mark.slow
def test_predict_finite_d_switch_labels_and_leaves_default_unchanged():
    """predict(..., d=d) keeps the §4.5 numbers; finite_d=True swaps in the §8 train loss, labelled per quantity."""
    import rfdiff
    kw = dict(activation="tanh", t=0.1, psi_p=16.0, psi_n=2.0, d=8, test_loss=False)
    base = rfdiff.predict(**kw)
    fin = rfdiff.predict(**kw, finite_d=True)
    Xs = [np.random.default_rng(s).standard_normal((16, 8)) for s in range(5)]   # predict_finite_d's default seeds
    assert fin.train_loss_inf == pytest.approx(np.mean([FD.train_loss_inf_de(X, 0.1, 128) for X in Xs]), rel=1e-12)
    assert fin.train_loss_inf != pytest.approx(base.train_loss_inf, rel=1e-3)
    assert fin.lambda_mem == base.lambda_mem and fin.edges == base.edges
    src = fin.diagnostics["finite_d_method"]
    assert "§8" in src["train_loss_inf"] and "§4.5" in src["lambda_mem"] and "§4.7" in src["test_loss_inf"]
    assert "finite_d_method" not in base.diagnostics
    # τ → ∞ alone takes the eigenvalue route; the curve's last point the eigenpair route: the same number
    curve = rfdiff.predict(**kw, finite_d=True, taus=np.array([1e3, np.inf]))
    assert curve.curves.train_loss[-1] == pytest.approx(fin.train_loss_inf, rel=1e-9)
    assert curve.curves.method.startswith("finite-d theory: train_loss: conditional kernel")


@pytest.mark.slow
def test_finite_d_column_values_and_sources():
    """finite_d_column: §8 train loss (mean over the seeds' X), §4.5 edges by the ladder's quantile rule, NaN with a reason elsewhere."""
    from rfdiff import timescales as T
    col = FD.finite_d_column("tanh", 0.1, 16.0, 2.0, 8, seeds=(0, 1))
    assert tuple(col) == FD.COLUMN_QUANTITIES
    Xs = [np.random.default_rng(s).standard_normal((16, 8)) for s in (0, 1)]
    assert col["train_loss_inf"].value == pytest.approx(np.mean([FD.train_loss_inf_de(X, 0.1, 128) for X in Xs]),
                                                        rel=1e-12)
    spec = predict("tanh", 0.1, 16.0, 2.0, test_loss=False, d=8).spectrum
    assert col["lambda_mem"].value == T.memorisation_edge(spec, 16, 128, 8)
    assert col["lambda_mem_upper"].value == T.memorisation_upper_edge(spec, 16, 128, 8)
    assert col["lambda_mem"].value < col["lambda_mem_upper"].value < col["lambda_pop"].value
    assert "§8" in col["train_loss_inf"].source and "§4.5" in col["lambda_mem_upper"].source
    for q in ("test_loss_inf", "tau_mem", "tau_gen", "min_score_error"):
        assert math.isnan(col[q].value) and "not predicted" in col[q].source


def test_kernel_cost_is_cubic_in_the_kernel_size():
    c1, c2 = FD.kernel_cost(400, 100), FD.kernel_cost(200, 100)
    assert c1["N"] == 40400 and c1["seconds_inf"] == pytest.approx(8 * c2["seconds_inf"])
    assert c1["gib"] == pytest.approx(8 * 40400 ** 2 / 2 ** 30)


@pytest.mark.slow
def test_full_kernel_approaches_theorem_3_1_as_d_grows():
    """The §8 L_train(∞) with the full conditional kernel moves towards Theorem 3.1 as d grows at fixed ψ_p, ψ_n (docs/theory.md §8.4).

    Measured (ψ_p = 8, ψ_n = 2, t = 0.1, neuron-norm types, mean over X of seeds 0–2; Theorem 3.1 0.4759):
    +5.0 % at d = 16, +3.4 % at d = 32, +2.4 % at d = 48, about 1/d.
    """
    th = predict("tanh", 0.1, 8, 2, test_loss=False).train_loss_inf
    gap = {}
    for d in (16, 32):
        v = np.mean([FD.train_loss_inf_de(np.random.default_rng(s).standard_normal((2 * d, d)), 0.1, 8 * d)
                     for s in range(3)])
        gap[d] = v / th - 1
    assert 0.045 < gap[16] < 0.055 and 0.030 < gap[32] < 0.039
    assert gap[32] < 0.75 * gap[16]
