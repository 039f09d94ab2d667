"""Benchmark: vectorised Theorem 3.1 solver vs a one-point-at-a-time Levenberg–Marquardt continuation.

The reference is the one-point-at-a-time approach attributed to the paper's published scripts:
walk along the λ grid and solve the Theorem 3.1 system (docs/theory.md §4.3) in its original
unknowns (q, r, s) — six real unknowns — with ``scipy.optimize.root(method="lm")`` one point at a
time, starting from the previous point's solution. (A plain λ-sweep at tiny ε follows the
unphysical real branch into the bulks, so for equal accuracy each point also descends its own
ε-ladder; see :func:`lm_continuation`.) The rfdiff solver (:func:`rfdiff.theory.solve_resolvent`,
docs/theory.md §4.4) handles all points at once by ε-continuation + Newton. Both work at the same
ε; accuracy is compared through ρ = Im q/π. Headline: ratio LM / vectorised, same run.

A second part times the deterministic-equivalent test-loss / score-error curves
(:func:`rfdiff.theory.generalisation_curves`, docs/theory.md §4.7, 61 τ values) against the
finite-d Gaussian-equivalent fallback (:func:`rfdiff.theory.ge_finite_curves`, §4.2) at d = 64 and
256 (d = 64 only with ``--quick``), with the fallback's deviation.

Usage: ``python benchmarks/bench_theory.py [--out results] [--n-points 1000] [--quick]``
(``--quick``: 200 points, one repeat, d = 64 only; about 15 s).
Writes ``<out>/bench_theory.json`` (``bench_theory_quick.json`` with ``--quick``) with both times,
their ratio and the agreement.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy
import scipy.optimize

from rfdiff.theory import ge_finite_curves, generalisation_curves, solve_resolvent, spectrum_params

ROOT = Path(__file__).resolve().parents[1]


def lm_residual(x, z, P):
    """Theorem 3.1 in the unknowns (q, r, s) (docs/theory.md §4), real-ified for Levenberg–Marquardt."""
    try:
        return _lm_residual(x, z, P)
    except (ZeroDivisionError, OverflowError):
        return [1e30] * 6


def _lm_residual(x, z, P):
    q, r, s = complex(x[0], x[1]), complex(x[2], x[3]), complex(x[4], x[5])
    g = P.psi_p / P.psi_n
    den1 = 1.0 + g * P.c * r + g * P.v2 * q
    s_hat = P.b2 * P.psi_p + 1.0 / q
    r_hat = P.psi_p * P.c / den1
    den = s_hat + P.lam * r_hat
    e1 = s - np.sum(P.w / den)
    e2 = r - np.sum(P.w * P.lam / den)
    e3 = P.psi_p * (P.s2 - z) + P.psi_p * P.v2 / den1 + (1.0 - P.psi_p) / q - s / (q * q)
    e3 = e3 * q / P.psi_p  # same equation, scaled to O(1) (a q² factor would add a spurious root q = 0)
    return [e1.real, e1.imag, e2.real, e2.imag, e3.real, e3.imag]


def lm_continuation(lambdas, P, eps, tol=1e-15, top=None, factor=10.0):
    """One point at a time along the λ grid; at each λ an ε-ladder ε_top, ε_top/10, …, ε, each rung an LM solve.

    A pure λ-sweep at tiny ε (start = previous point's solution) follows the real, unphysical
    branch into the bulks, so every point descends its own ε-ladder; the top rung starts from the
    previous point's top-rung solution (λ-continuation), each lower rung from the rung above.
    """
    top = 0.1 * P.upper_bound() if top is None else top
    n_rungs = max(1, int(math.ceil(math.log(top / eps) / math.log(factor))))
    rungs = [eps * factor ** k for k in range(n_rungs, -1, -1)]
    q_out = np.empty(lambdas.size, complex)
    ok = np.zeros(lambdas.size, bool)
    z0 = lambdas[0] + 1j * rungs[0]
    q0 = -1.0 / z0
    x_top = np.array([q0.real, q0.imag, (P.sigma_x2 * q0).real, (P.sigma_x2 * q0).imag, q0.real, q0.imag])
    nfev = 0
    for i in range(lambdas.size):
        x = x_top
        success = True
        for k, e in enumerate(rungs):
            sol = scipy.optimize.root(lm_residual, x, args=(lambdas[i] + 1j * e, P), method="lm",
                                      options={"xtol": tol, "ftol": tol})
            nfev += sol.nfev
            x = sol.x
            success &= bool(sol.success)
            if k == 0:
                x_top = x
        q_out[i] = complex(x[0], x[1])
        ok[i] = success and x[1] > 0
    return q_out, ok, nfev


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "results"), help="output folder (default <repo>/results/)")
    ap.add_argument("--n-points", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats of the vectorised solver")
    ap.add_argument("--psi-p", type=float, default=64.0)
    ap.add_argument("--psi-n", type=float, default=8.0)
    ap.add_argument("--t", type=float, default=0.01)
    ap.add_argument("--activation", default="tanh")
    ap.add_argument("--quick", action="store_true", help="200 points, 1 repeat, fallback at d = 64 only")
    a = ap.parse_args(argv)
    if a.quick:
        a.n_points, a.repeats = 200, 1
    P = spectrum_params(a.activation, a.t, a.psi_p, a.psi_n)
    lam = np.linspace(0.0, 1.1 * 45.0 if a.t <= 0.01 else 50.0, a.n_points)
    eps = 1e-8 * P.upper_bound()

    solve_resolvent(lam[:5], P, eps=eps)  # warm-up (imports, caches)
    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        sol = solve_resolvent(lam, P, eps=eps)
        times.append(time.perf_counter() - t0)
    t_vec = min(times)

    t0 = time.perf_counter()
    q_lm, ok_lm, nfev = lm_continuation(lam, P, eps)
    t_lm = time.perf_counter() - t0

    rho_vec = sol["q"].imag / math.pi
    rho_lm = q_lm.imag / math.pi
    scale = np.max(np.abs(rho_vec))
    diff = np.abs(rho_vec - rho_lm) / scale
    agree = diff < 1e-6
    res = {
        "config": {"activation": a.activation, "t": a.t, "psi_p": a.psi_p, "psi_n": a.psi_n, "n_points": a.n_points,
                   "eps": eps, "lambda_range": [float(lam[0]), float(lam[-1])]},
        "time_vectorised_s": t_vec, "time_vectorised_all_s": times,
        "time_lm_s": t_lm, "ratio_lm_over_vectorised": t_lm / t_vec,
        "vectorised_converged": int(sol["converged"].sum()), "vectorised_max_residual": float(sol["residual"].max()),
        "lm_success": int(ok_lm.sum()), "lm_function_evaluations": int(nfev),
        "max_rel_rho_difference": float(diff.max()), "median_rel_rho_difference": float(np.median(diff)),
        "n_points_disagreeing_1e-6": int((~agree).sum()),
        "max_rel_rho_difference_where_agreeing": float(diff[agree].max()) if agree.any() else None,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__},
        "cpu_count": os.cpu_count(),
    }
    res["test_loss_curves"] = bench_test_loss(a.activation, a.psi_p, a.psi_n, a.repeats, (64,) if a.quick else (64, 256))
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, f"bench_theory{'_quick' if a.quick else ''}.json")
    with open(path, "w") as fh:
        json.dump(res, fh, indent=2)
    print(f"vectorised ε-continuation + Newton: {t_vec:.4f} s for {a.n_points} points "
          f"({res['vectorised_converged']} converged)")
    print(f"one-point LM continuation:          {t_lm:.3f} s ({res['lm_success']} successes, {nfev} evaluations)")
    print(f"ratio LM / vectorised:              {t_lm / t_vec:.0f}x")
    print(f"max |Δρ|/max ρ = {diff.max():.2e} (median {np.median(diff):.1e}); "
          f"{res['n_points_disagreeing_1e-6']} points differ by more than 1e-6")
    tl = res["test_loss_curves"]
    print(f"test-loss / score-error curves ({tl['n_tau']} τ, t = {tl['t']}): deterministic equivalent "
          f"{tl['time_de_s']:.2f} s" + "".join(f"; fallback d = {r['d']}: {r['time_s']:.2f} s, max rel deviation "
                                              f"L_test {r['max_rel_test']:.1e}, E_score {r['max_rel_score']:.1e}"
                                              for r in tl["fallback"]))
    print(f"wrote {path}")
    return res


def bench_test_loss(activation, psi_p, psi_n, repeats, ds, t=0.1, n_tau=61):
    """Deterministic-equivalent L_test/E_score curves vs the finite-d GE fallback (time and deviation)."""
    taus = np.geomspace(1e-2, 1e8, n_tau)
    generalisation_curves(taus[:2], activation, t, psi_p, psi_n)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        de = generalisation_curves(taus, activation, t, psi_p, psi_n)
        times.append(time.perf_counter() - t0)
    rows = []
    for d in ds:
        t0 = time.perf_counter()
        ge = ge_finite_curves(taus, activation, t, psi_p, psi_n, d=d, seeds=(0,))
        rows.append({"d": d, "time_s": time.perf_counter() - t0,
                     "max_rel_test": float(np.max(np.abs(ge["test_loss"] - de["test_loss"]) / de["test_loss"])),
                     "max_rel_score": float(np.max(np.abs(ge["score_error"] - de["score_error"]) / de["score_error"]))})
    return {"t": t, "n_tau": n_tau, "time_de_s": float(np.median(times)), "contour_error": de["contour_error"],
            "fallback": rows}


if __name__ == "__main__":
    main()
