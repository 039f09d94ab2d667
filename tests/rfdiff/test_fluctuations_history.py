"""The fluctuation floor along the mean trajectory's history (rfdiff.fluctuations, docs/theory.md §7.2)."""
import math

import jax
import numpy as np
import pytest

from rfdiff import RFConfig, build_problem, dynamics, training
from rfdiff import fluctuations as F
from rfdiff.diffusion import delta


def _psd(p, rng):
    G = rng.standard_normal((p, p))
    return G @ G.T


def _recursion(S_of_step, lam, QtUpQ, eta, steps, d, t):
    """C ← M C M + η² S(j), j = 0 … k−1 (the definition), then the excesses at each checkpoint."""
    p = lam.size
    dt = delta(t)
    M = np.diag(1.0 - 2.0 * eta * dt / (d * p) * lam)
    C = np.zeros((p, p))
    out = {}
    for j in range(max(steps)):
        C = M @ C @ M + eta**2 * S_of_step(j)
        if j + 1 in steps:
            out[j + 1] = (dt / (d * p) * np.sum(lam * np.diag(C)), dt / (d * p) * np.sum(C * QtUpQ))
    return np.array([out[k] for k in steps])


@pytest.mark.parametrize("eta", [2.3, 5.0])           # 5.0: overshooting modes, 1 < rλ < 2
def test_history_with_a_node_at_every_step_is_the_recursion(eta):
    rng = np.random.default_rng(0)
    p, d, t = 5, 3, 0.5
    lam = np.array([0.0, 0.2, 1.0, 2.0, 3.0])
    Up = _psd(p, rng) + np.eye(p)
    Ss = [_psd(p, rng) * (1.0 + 0.3 * j) for j in range(40)]      # the noise changes at every step
    steps = [1, 2, 7, 19, 40]
    got = F.excess_losses_history(Ss, np.arange(40), lam, Up, eta, steps, d, t)
    np.testing.assert_allclose(got, _recursion(lambda j: Ss[j], lam, Up, eta, steps, d, t), rtol=1e-10)


def test_history_with_one_covariance_is_the_quasi_static_form():
    rng = np.random.default_rng(1)
    p, d, t, eta = 4, 3, 0.3, 1.7
    lam = np.array([0.3, 1.0, 2.0, 4.0])
    S, Up = _psd(p, rng), _psd(p, rng)
    nodes = F.history_nodes(500, 6)
    assert nodes[0] == 0 and nodes[-1] == 500 and np.all(np.diff(nodes) > 0)
    got = F.excess_losses_history([S] * nodes.size, nodes, lam, Up, eta, [1, 9, 500], d, t)
    want = [F.excess_losses(S, lam, Up, eta, k, d, t) for k in (1, 9, 500)]
    np.testing.assert_allclose(got, want, rtol=1e-11)


def test_history_nodes_take_the_nearest_covariance_in_log_steps():
    """Nodes 0, 1, 4, 16: steps 0 | 1 | 2–3 (√(1·4) = 2) | 4–7 (√(4·16) = 8) | 8 … take S_0, S_1, S_4, S_16."""
    p, d, t, eta = 3, 2, 0.4, 0.9
    lam = np.array([0.5, 1.0, 2.0])
    Up = np.eye(p)
    rng = np.random.default_rng(2)
    Ss = [_psd(p, rng) for _ in range(4)]
    which = lambda j: Ss[0] if j == 0 else Ss[1] if j == 1 else Ss[2] if j < 8 else Ss[3]  # noqa: E731
    got = F.excess_losses_history(Ss, [0, 1, 4, 16], lam, Up, eta, [3, 8, 30], d, t)
    np.testing.assert_allclose(got, _recursion(which, lam, Up, eta, [3, 8, 30], d, t), rtol=1e-10)
    with pytest.raises(ValueError, match="nodes"):
        F.excess_losses_history(Ss, [1, 2, 4, 16], lam, Up, eta, [3], d, t)
    with pytest.raises(ValueError, match="S_nodes"):
        F.excess_losses_history(Ss[:3], [0, 1, 4, 16], lam, Up, eta, [3], d, t)


@pytest.mark.slow
def test_both_forms_against_fresh_noise_gd():
    """Fresh-noise GD at the authors' learning rate 10⁻²·d/Δ_t, 5 noise seeds (d = 32, p = 512, n = 128, t = 0.1,
    300 steps), against both predictions (64 draws per covariance). The Monte Carlo excess is the quadratic part
    Δ_t/(dp) Tr(δA U δAᵀ) of each run's deviation δA from the exact mean iterate (the linear part has mean
    zero and dominates the scatter); its standard error is 1–3 %. Over the first 13 steps, where the noise falls
    as A trains, the quasi-static form is low (measured with 8 seeds: 4–9 %) and the history form is not
    (within 3 %); later both agree with the Monte Carlo."""
    d, p, n, t, seeds = 32, 512, 128, 0.1, 5
    prob = build_problem(RFConfig(d=d, p=p, n=n, t=t, seed=0, n_emp=256, activation="tanh"))
    dyn = dynamics.from_problem(prob)
    eta = p * 1e-2 * d / delta(t)
    tc = training.TrainConfig(optimizer="gd", eta=eta, tau_max=300 * eta / d**2, n_log=12, noise="fresh",
                              log_chunk=20, save_A=True)
    runs = [training.train_problem(jax.random.PRNGKey(100 + s), tc, prob) for s in range(seeds)]
    tau, steps = runs[0].curves.tau, runs[0].step
    Abar = [np.asarray(dyn.A(float(x), eta=eta)) for x in tau]
    U = np.asarray(prob.train.U)
    mc = np.array([[delta(t) / (d * p) * np.trace((np.asarray(r.A_path[i]) - Abar[i]) @ U
                                                  @ (np.asarray(r.A_path[i]) - Abar[i]).T)
                    for i in range(tau.size)] for r in runs])
    m, se = mc.mean(0), mc.std(0, ddof=1) / math.sqrt(seeds)
    key = jax.random.PRNGKey(7)
    quasi = F.predict_floor(key, dyn, prob.pop.U, prob.W, prob.X, tau, steps, eta, 64, "tanh").train_excess / m
    hist = F.predict_floor_history(key, dyn, prob.pop.U, prob.W, prob.X, tau, steps, eta, 64, "tanh").train_excess / m
    print("steps", steps, "\nse/MC", np.round(se / m, 3), "\nquasi/MC", np.round(quasi, 3), "\nhistory/MC",
          np.round(hist, 3))
    assert np.all(se / m < 0.05)
    assert np.all(np.abs(hist - 1) <= 3 * se / m + 0.02)             # the history form: within the MC everywhere
    early = steps <= 13
    assert np.mean(quasi[early]) < 0.96 and abs(np.mean(hist[early]) - 1) < 0.03
    late = steps >= 38
    assert np.all(np.abs(quasi[late] - 1) <= 3 * se[late] / m[late] + 0.02)
