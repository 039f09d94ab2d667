"""rfdiff._surrogates: L_train(∞) of the exact U and of surrogates that replace one part of it (docs/theory.md §7.1)."""
import numpy as np
import pytest

from rfdiff.matrices import train_matrices
from rfdiff.model import draw, RFConfig
from rfdiff._surrogates import train_loss_surrogates


def test_exact_part_is_the_train_loss_of_U_and_surrogates_are_close():
    cfg = RFConfig(d=8, p=64, n=32, t=0.1, seed=2, tol=1e-10)
    dr = draw(cfg)
    s = train_loss_surrogates(dr.W, dr.X, cfg.t, "tanh", tol=1e-10, seed=2)
    tm = train_matrices(dr.W, dr.X, cfg.t, "tanh", tol=1e-10)
    U, V = np.asarray(tm.U), np.asarray(tm.V)
    assert s.exact == pytest.approx(1 - np.trace(V.T @ np.linalg.solve(U, V)) / cfg.d, rel=1e-12)
    assert abs(s.order1 / s.exact - 1) < 0.05     # Mehler orders ≥ 2 of the noise covariance matter little (2 % at d = 8)
    for v in (s.slopes_avg, s.mean_iid, s.both):
        assert 0 < v < 1
    assert train_loss_surrogates(dr.W, dr.X, cfg.t, seed=2) == s           # numpy seed: reproducible
    with pytest.raises(ValueError, match="^t must"):
        train_loss_surrogates(dr.W, dr.X, -1.0)
