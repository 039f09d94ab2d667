#!/usr/bin/env python
"""Finite-size study: how far is the theory's L_train(τ) from the exact finite-d model, and why (issue 3).

For each (d, ψ_n) at fixed ψ_p and t, one draw of W and of the training set gives three sets of
train- and test-loss curves on the same τ grid:
  * exact: the noise-averaged U, V, Ũ, Ṽ of the finite-d model (Mehler + Stein, rfdiff.matrices)
    and its exact gradient-flow curves (rfdiff.dynamics);
  * GE draw: Lemma C.1's Gaussian-equivalent matrices built on the *same* W and X
    (rfdiff.theory.ge_lowrank_curves);
  * theory: the deterministic equivalents of SPEC §4 (d → ∞; the test loss by
    rfdiff.theory.generalisation), and the train loss with the finite-d sample-norm correction
    (predict(d=...)).
Reported per point: the maximal relative error over τ ≤ 100 τ_mem (the acceptance metric of
issue 3) of theory vs exact, of the finite-d theory vs exact, and of theory vs the GE draw; and a
power-law fit of the theory-vs-exact error against n at fixed ψ_p, ψ_n (a finite-size correction
∝ 1/n has slope −1). The GE-draw column separates the two sources of error: the theory against
its own Gaussian-equivalent model (fluctuations, → 0 with p) and the Gaussian-equivalent model
against the exact one (the finite-d correction). A second block scans ψ_p ∈ {8, 16, 32} at the
same d and ψ_n: at fixed n and d the GE-vs-exact gap grows with p.
``--decompose`` adds L_train(∞) of the exact model and of surrogates that replace one of its parts
by its Gaussian-equivalent counterpart (decompose_unit), which shows where the gap comes from.

Example: python experiments/finite_size.py --quick
Writes <out>/finite_size[_quick]_s<seed>.json (table, fits, config) and .npz (curves), and
<figdir>/finite_size[_quick].png/.pdf. Units are cached under <out>/cache_finite_size/ so an
interrupted run resumes.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "experiments"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from _figlib import Cache, tau_grid  # noqa: E402

# Each preset is a union of (d × ψ_n × ψ_p) blocks: the d-scan at ψ_p = 64 (the acceptance setting
# of issue 3) and a ψ_p-scan at fixed d, n that isolates the p-dependence of the gap.
MAIN_PSI_P = 64.0
SIZES = {
    "full": [dict(ds=(16, 24, 32, 48, 64, 100), psi_ns=(4.0, 8.0, 16.0), psi_ps=(MAIN_PSI_P,)),
             dict(ds=(16, 24, 32, 48), psi_ns=(4.0, 8.0), psi_ps=(8.0, 16.0, 32.0))],
    "quick": [dict(ds=(12, 16, 24, 32), psi_ns=(4.0, 8.0), psi_ps=(MAIN_PSI_P,)),
              dict(ds=(12, 16), psi_ns=(4.0,), psi_ps=(8.0, 16.0, 32.0))],
}
DECOMPOSE = dict(ds=(24, 32, 48, 64, 96), psi_n=4.0, psi_p=MAIN_PSI_P)
TAU_GRID = dict(tau_min=1e-2, tau_max=1e8, n_tau=61)
CURVES = ("taus", "exact", "ge", "theory", "theory_d", "exact_test", "ge_test", "theory_test")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="d ≤ 32 (about two minutes)")
    ap.add_argument("--ds", default=None, help="comma-separated d values (with --psi-ns/--psi-p: one product grid)")
    ap.add_argument("--psi-ns", default=None, help="comma-separated ψ_n values")
    ap.add_argument("--psi-p", default=None, help="comma-separated ψ_p = p/d values (default 64)")
    ap.add_argument("--decompose", action="store_true",
                    help="also split L_train(∞)'s gap into parts of the exact model (d = 24 … 96; ψ_n = 4, ψ_p = 64)")
    ap.add_argument("--t", type=float, default=0.1, help="diffusion time t")
    ap.add_argument("--seed", type=int, default=1, help="PRNG seed of W and the training set")
    ap.add_argument("--out", default="results", help="folder for JSON + NPZ (and the unit cache)")
    ap.add_argument("--figdir", default="figures", help="folder for PNG + PDF")
    ap.add_argument("--no-plot", action="store_true", help="skip the figure")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = ap.parse_args(argv)
    blocks = [dict(b) for b in SIZES["quick" if args.quick else "full"]]
    if args.ds or args.psi_ns or args.psi_p:
        base = blocks[0]
        try:
            blocks = [dict(ds=tuple(int(x) for x in args.ds.split(",")) if args.ds else base["ds"],
                           psi_ns=tuple(float(x) for x in args.psi_ns.split(",")) if args.psi_ns else base["psi_ns"],
                           psi_ps=tuple(float(x) for x in args.psi_p.split(",")) if args.psi_p else base["psi_ps"])]
        except ValueError as e:
            ap.error(f"--ds/--psi-ns/--psi-p need comma-separated numbers ({e})")
    for b in blocks:
        if min(b["ds"]) < 4 or min(b["psi_ns"]) <= 0 or min(b["psi_ps"]) <= 0:
            ap.error("need d ≥ 4, ψ_n > 0 and ψ_p > 0")
    if args.t <= 0:
        ap.error("need t > 0")
    args.blocks = blocks
    args.grid = sorted({(d, psi_n, psi_p) for b in blocks for psi_p in b["psi_ps"] for psi_n in b["psi_ns"]
                        for d in b["ds"]}, key=lambda g: (g[2] != MAIN_PSI_P, g[2], g[1], g[0]))
    return args


def draw(params: dict):
    """The unit's sizes and its one draw of W (p×d) and the isotropic training set X (n×d) from ``seed``."""
    import jax

    from rfdiff import data as rdata
    from rfdiff.features import init_W

    d, psi_n, psi_p, seed = params["d"], params["psi_n"], params["psi_p"], params["seed"]
    p, n = int(round(psi_p * d)), int(round(psi_n * d))
    kW, kX = jax.random.split(jax.random.PRNGKey(seed))
    data = rdata.isotropic(d)
    return p, n, data, init_W(kW, p, d), data.sample(kX, n)


def gap_unit(params: dict) -> tuple[dict, dict]:
    """One (d, ψ_n, seed): exact, GE-draw and theory train-loss curves and their relative errors."""
    from rfdiff.dynamics import exact_dynamics
    from rfdiff.matrices import population_matrices, train_matrices
    from rfdiff.theory import ge_lowrank_curves, predict

    d, psi_n, psi_p, t, seed = params["d"], params["psi_n"], params["psi_p"], params["t"], params["seed"]
    p, n, data, W, X = draw(params)
    taus = tau_grid(**TAU_GRID)
    t0 = time.perf_counter()
    M = train_matrices(W, X, t)
    Mp = population_matrices(W, data, t)
    dyn = exact_dynamics(M.U, M.V, t, Mp.U, Mp.V)
    cur = dyn.curves(taus)
    exact, exact_test = np.asarray(cur["train_loss"]), np.asarray(cur["test_loss"])
    edge = float(np.sort(np.asarray(dyn.lam))[p - n])  # first eigenvalue of the memorisation bulk
    t_exact = time.perf_counter() - t0
    ge_all = ge_lowrank_curves(taus, W, X, t, seed=seed)
    ge, ge_test = np.asarray(ge_all["train_loss"]), np.asarray(ge_all["test_loss"])
    th = predict("tanh", t, psi_p, psi_n, taus=taus)
    th_d = predict("tanh", t, psi_p, psi_n, taus=taus, test_loss=False, d=d)
    keep = taus <= 100.0 * th["tau_mem"]

    def err(a, b):
        r = np.abs(a - b) / np.abs(b)
        return float(r[keep].max()), float(r[-1])

    scal = {"d": d, "p": p, "n": n, "psi_n": psi_n, "psi_p": psi_p, "tau_mem": th["tau_mem"], "exact_s": t_exact,
            "edge_exact": edge, "edge_err": th["lambda_min"] / edge - 1.0, "edge_err_d": th_d["lambda_min"] / edge - 1.0}
    for name, a, b in [("theory_vs_exact", th["train_loss"], exact), ("theory_d_vs_exact", th_d["train_loss"], exact),
                       ("theory_vs_ge", th["train_loss"], ge), ("ge_vs_exact", ge, exact),
                       ("test_theory_vs_exact", th["test_loss"], exact_test), ("test_theory_vs_ge", th["test_loss"], ge_test),
                       ("test_ge_vs_exact", ge_test, exact_test)]:
        scal[name], scal[name + "_inf"] = err(a, b)
    arrays = {"taus": taus, "exact": exact, "ge": ge, "theory": th["train_loss"], "theory_d": th_d["train_loss"],
              "exact_test": exact_test, "ge_test": ge_test, "theory_test": th["test_loss"]}
    return scal, arrays


def decompose_unit(params: dict) -> tuple[dict, dict]:
    """L_train(∞) = 1 − (1/d) Tr Vᵀ U⁻¹ V of the exact model and of surrogates that replace one part of it.

    With φ_ν's noise mean G0 = g_0(M, s) and slopes G1 = g_1(M, s) (Mehler notation of
    rfdiff.matrices), the exact U = G0 G0ᵀ/n + C with C the noise covariance averaged over the
    training set. Surrogates, all with the exact V (so each is the loss of a valid model):
    * "order1": C's off-diagonal truncated at Mehler order 1, ``Δ_t K ∘ (G1 G1ᵀ/n)``, K = WWᵀ/d;
    * "slopes_avg": the per-point slopes replaced by their average, ``Δ_t K ∘ ḡ ḡᵀ`` (= V Vᵀ);
    * "mean_iid": the mean's nonlinear part (G0 minus its population linear part, per neuron)
      replaced by independent Gaussians of the same population variance, exact C;
    * "both": slopes_avg and mean_iid together (closest to the Gaussian-equivalent model).
    """
    import jax
    import jax.numpy as jnp

    from rfdiff.activations import smoothed_derivatives
    from rfdiff.diffusion import delta
    from rfdiff.matrices import train_matrices
    from rfdiff.theory import predict

    d, psi_n, psi_p, t, seed = params["d"], params["psi_n"], params["psi_p"], params["t"], params["seed"]
    p, n, _, W, X = draw(params)   # the same W, X as gap_unit
    with jax.enable_x64(True):
        W, X = jnp.asarray(W, jnp.float64), jnp.asarray(X, jnp.float64)
        Mf = train_matrices(W, X, t)
        U, V = np.asarray(Mf.U), np.asarray(Mf.V)
        dt, wn2 = delta(t), jnp.sum(W ** 2, axis=1) / d
        M = np.exp(-t) * (W @ X.T) / np.sqrt(d)
        s = jnp.sqrt(dt * wn2)[:, None]
        g, _ = smoothed_derivatives("tanh", M, s, 1)
        G0, G1 = g[0], g[1]
        z, wq = np.polynomial.hermite_e.hermegauss(64)
        wq = wq / wq.sum()
        sm = np.exp(-t) * jnp.sqrt(wn2)[:, None]            # population std of M per neuron
        gq, _ = smoothed_derivatives("tanh", sm * z[None, :], s, 1)
        mean0 = gq[0] @ wq
        slope = gq[1] @ wq                                     # Stein: E[g_0(h) h]/E h² = E g_1(h)
        res_var = (gq[0] ** 2) @ wq - mean0 ** 2 - slope ** 2 * sm[:, 0] ** 2
        G0, G1, M = np.asarray(G0), np.asarray(G1), np.asarray(M)
        slope, res_var, mean0 = np.asarray(slope), np.asarray(res_var), np.asarray(mean0)
    K = np.asarray(W @ W.T) / d
    C = U - G0 @ G0.T / n
    dC = np.diag(C).copy()

    def with_diag(A):
        A[np.diag_indices(p)] = dC
        return A

    def linf(Uh):
        return float(1.0 - np.trace(V.T @ np.linalg.solve(Uh, V)) / d)

    gbar = G1.mean(axis=1)
    C_avg = with_diag(dt * K * np.outer(gbar, gbar))
    rng = np.random.default_rng(seed)
    G_iid = mean0[:, None] + slope[:, None] * M + rng.standard_normal((p, n)) * np.sqrt(np.maximum(res_var, 0))[:, None]
    mean_exact, mean_iid = G0 @ G0.T / n, G_iid @ G_iid.T / n
    out = {"d": d, "p": p, "n": n, "psi_n": psi_n, "psi_p": psi_p,
           "exact": linf(U), "order1": linf(mean_exact + with_diag(dt * K * (G1 @ G1.T / n))),
           "slopes_avg": linf(mean_exact + C_avg), "mean_iid": linf(mean_iid + C), "both": linf(mean_iid + C_avg),
           "theory": predict("tanh", t, psi_p, psi_n, test_loss=False)["train_loss_inf"]}
    return out, {}


def fits_by_psi_n(rows: list[dict]) -> dict:
    """Power-law fits of the theory-vs-exact (and GE-vs-exact) error against n per (ψ_p, ψ_n), and against ψ_p/n."""
    from analysis.fits import fit_power_law
    out = {}
    for psi_p, psi_n in sorted({(r["psi_p"], r["psi_n"]) for r in rows}):
        sel = [r for r in rows if r["psi_n"] == psi_n and r["psi_p"] == psi_p]
        if len(sel) < 3:
            continue
        n = np.array([r["n"] for r in sel], float)
        key = f"psi_p={psi_p:g},psi_n={psi_n:g}"
        out[key] = {k: fit_power_law(n, np.array([r[k] for r in sel]))
                    for k in ("theory_vs_exact", "ge_vs_exact", "theory_vs_exact_inf", "test_theory_vs_exact")}
        out[key]["n_times_error"] = [float(v) for v in n * np.array([r["theory_vs_exact"] for r in sel])]
    if len({r["psi_p"] for r in rows}) > 1:
        x = np.array([r["psi_p"] / r["n"] for r in rows])
        out["vs_psi_p_over_n"] = {k: fit_power_law(x, np.array([r[k] for r in rows]))
                                  for k in ("theory_vs_exact", "ge_vs_exact")}
        ratio = np.array([r["ge_vs_exact"] for r in rows]) / x
        out["vs_psi_p_over_n"]["ratio_ge_vs_exact"] = {
            "median": float(np.median(ratio)), "min": float(ratio.min()), "max": float(ratio.max())}
    return out


def plot(rows, curves, stem):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rfdiff import io
    fig, (ax, tx, px, bx) = plt.subplots(1, 4, figsize=(21, 4.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    main_pp = MAIN_PSI_P if any(r["psi_p"] == MAIN_PSI_P for r in rows) else max(r["psi_p"] for r in rows)
    main_rows = [r for r in rows if r["psi_p"] == main_pp]
    nn = np.array(sorted({r["n"] for r in main_rows}), float)
    for a, pre, what in ((ax, "", "L_train"), (tx, "test_", "L_test")):
        for k, psi_n in enumerate(sorted({r["psi_n"] for r in main_rows})):
            sel = sorted((r for r in main_rows if r["psi_n"] == psi_n), key=lambda r: r["n"])
            n = np.array([r["n"] for r in sel])
            c = colors[k % len(colors)]
            a.loglog(n, [r[pre + "theory_vs_exact"] for r in sel], "o-", color=c, label=f"theory vs exact, ψ_n={psi_n:g}")
            if not pre:
                a.loglog(n, [r["theory_d_vs_exact"] for r in sel], "s--", color=c, ms=4, alpha=0.7,
                         label=f"finite-d theory vs exact, ψ_n={psi_n:g}")
            a.loglog(n, [r[pre + "theory_vs_ge"] for r in sel], "^:", color=c, ms=4, alpha=0.7,
                     label=f"theory vs GE draw, ψ_n={psi_n:g}")
        ref = max(r[pre + "theory_vs_exact"] * r["n"] for r in main_rows)
        a.loglog(nn, ref / nn, "k-", lw=0.8, alpha=0.5, label="∝ 1/n")
        a.axhline(0.02, color="r", lw=0.8, ls="--", label="2 %")
        a.set_xlabel("n (training points)")
        a.set_ylabel(f"max relative error of {what}, τ ≤ 100 τ_mem")
        a.set_title(f"{what}: theory (d → ∞) against finite d, ψ_p = {main_pp:g}")
    ax.legend(fontsize=6, ncol=1)
    pps = sorted({r["psi_p"] for r in rows})
    for k, pp in enumerate(pps):
        sel = [r for r in rows if r["psi_p"] == pp]
        for psi_n, mk in zip(sorted({r["psi_n"] for r in sel}), "osD^v"):
            ss = [r for r in sel if r["psi_n"] == psi_n]
            px.loglog([r["psi_p"] / r["n"] for r in ss], [r["ge_vs_exact"] for r in ss], mk, color=colors[k % len(colors)],
                      ms=5, alpha=0.8, label=f"ψ_p={pp:g}, ψ_n={psi_n:g}")
    x = np.array(sorted(r["psi_p"] / r["n"] for r in rows))
    c = float(np.median([r["ge_vs_exact"] * r["n"] / r["psi_p"] for r in rows]))
    px.loglog(x, c * x, "k-", lw=0.8, alpha=0.6, label=f"{c:.2f} ψ_p/n")
    px.axhline(0.02, color="r", lw=0.8, ls="--")
    px.set_xlabel("ψ_p / n = p / (n d)")
    px.set_ylabel("max relative error, GE draw vs exact (L_train)")
    px.set_title("GE model vs exact: the gap grows with p at fixed n, d")
    px.legend(fontsize=6, ncol=2)
    key = max(curves, key=lambda k: (curves[k]["psi_p"] == main_pp, curves[k]["d"], -curves[k]["psi_n"]))
    cu = curves[key]
    for name, style, lab in [("exact", "k-", "exact finite d"), ("ge", "C2:", "GE draw (same W, X)"),
                             ("theory", "C0--", "theory d → ∞"), ("theory_d", "C1-.", "finite-d theory")]:
        bx.semilogx(cu["taus"], cu[name], style, label="train: " + lab)
    for name, style, lab in [("exact_test", "k-", "exact finite d"), ("ge_test", "C2:", "GE draw"),
                             ("theory_test", "C3--", "deterministic equivalent")]:
        bx.semilogx(cu["taus"], cu[name], style, lw=2 if name == "exact_test" else 1.2, alpha=0.6,
                    label="test: " + lab)
    bx.set_xlabel("τ")
    bx.set_ylabel("loss")
    bx.set_title(f"d = {cu['d']}, ψ_n = {cu['psi_n']:g}, ψ_p = {cu['psi_p']:g}")
    bx.legend(fontsize=7)
    fig.tight_layout()
    files = io.save_figure(fig, stem)
    plt.close(fig)
    return files


def print_tables(rows, fits, decomposition):
    print("max relative error over τ ≤ 100 τ_mem (train: L_train; test: L_test)")
    print(f"{'d':>4} {'p':>6} {'n':>5} {'ψ_n':>5} {'ψ_p':>4} | {'theory vs exact':>15} {'finite-d vs exact':>17} "
          f"{'theory vs GE':>12} {'GE vs exact':>11} | {'n × err':>7} {'n/ψ_p × GE err':>14} | "
          f"{'mem. edge err (∞, d)':>20} | {'test: theory vs exact':>21} {'vs GE':>7}")
    for r in rows:
        print(f"{r['d']:4d} {r['p']:6d} {r['n']:5d} {r['psi_n']:5g} {r['psi_p']:4g} | {r['theory_vs_exact']:15.2%} "
              f"{r['theory_d_vs_exact']:17.2%} {r['theory_vs_ge']:12.2%} {r['ge_vs_exact']:11.2%} | "
              f"{r['n'] * r['theory_vs_exact']:7.1f} {r['n'] / r['psi_p'] * r['ge_vs_exact']:14.2f} | "
              f"{r['edge_err']:+9.1%} {r['edge_err_d']:+9.1%}  | "
              f"{r['test_theory_vs_exact']:21.2%} {r['test_theory_vs_ge']:7.2%}")
    for key, f in fits.items():
        if key == "vs_psi_p_over_n":
            g, q = f["ge_vs_exact"], f["ratio_ge_vs_exact"]
            print(f"GE-vs-exact error ∝ (ψ_p/n)^{g['slope']:.2f} ± {g['slope_se']:.2f} over all points; "
                  f"error × n/ψ_p: median {q['median']:.2f} (range {q['min']:.2f} … {q['max']:.2f})")
            continue
        fe = f["theory_vs_exact"]
        print(f"{key.replace('psi', 'ψ').replace(',', ', ')}: theory-vs-exact error ∝ n^{fe['slope']:.2f} ± {fe['slope_se']:.2f}; "
              f"GE-vs-exact ∝ n^{f['ge_vs_exact']['slope']:.2f}; test loss theory-vs-exact ∝ "
              f"n^{f['test_theory_vs_exact']['slope']:.2f}")
    if decomposition:
        print("L_train(τ → ∞) of the exact model and of surrogates that replace one part of it (see decompose_unit)")
        print(f"{'d':>4} {'p':>6} {'n':>5} | {'exact':>7} {'order 1':>8} {'slopes avg':>10} {'mean iid':>9} "
              f"{'both':>7} | {'theory':>7}")
        for r in decomposition:
            print(f"{r['d']:4d} {r['p']:6d} {r['n']:5d} | {r['exact']:7.4f} {r['order1']:8.4f} {r['slopes_avg']:10.4f} "
                  f"{r['mean_iid']:9.4f} {r['both']:7.4f} | {r['theory']:7.4f}")


def main(argv=None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from rfdiff import io
    out, figdir = Path(args.out), Path(args.figdir)
    cache = Cache(out / "cache_finite_size")
    rows, curves, decomposition = [], {}, []
    t0 = time.perf_counter()
    for d, psi_n, psi_p in tqdm(args.grid, disable=args.no_progress, desc="finite size", unit="point", file=sys.stderr):
        params = {"d": d, "psi_n": psi_n, "psi_p": psi_p, "t": args.t, "seed": args.seed}
        r = cache.get("ltrain_gap", params, gap_unit)
        rows.append({**{k: v for k, v in r.items() if k not in CURVES and not k.startswith("_")}, "psi_p": psi_p})
        curves[f"d{d}_psin{psi_n:g}_psip{psi_p:g}"] = {"d": d, "psi_n": psi_n, "psi_p": psi_p,
                                                      **{k: r[k] for k in CURVES}}
    if args.decompose:
        dec = DECOMPOSE
        for d in tqdm(dec["ds"], disable=args.no_progress, desc="decomposition", unit="d", file=sys.stderr):
            params = {"d": d, "psi_n": dec["psi_n"], "psi_p": dec["psi_p"], "t": args.t, "seed": args.seed}
            r = cache.get("ltrain_inf_parts", params, decompose_unit)
            decomposition.append({k: v for k, v in r.items() if not k.startswith("_")})
    fits = fits_by_psi_n(rows)
    name = f"finite_size{'_quick' if args.quick else ''}_s{args.seed}"
    result = {"config": {"blocks": args.blocks, "t": args.t, "seed": args.seed, "tau_grid": TAU_GRID},
              "rows": rows, "fits": fits, "decomposition": decomposition,
              "wall_s": time.perf_counter() - t0, "metadata": io.run_metadata()}
    files = [io.save_json(out / f"{name}.json", result),
             io.save_npz(out / f"{name}.npz", {f"{k}_{a}": v[a] for k, v in curves.items()
                                               for a in CURVES})]
    if not args.no_plot:
        files += plot(rows, curves, figdir / f"finite_size{'_quick' if args.quick else ''}")
    print_tables(rows, fits, decomposition)
    print(f"wall {result['wall_s']:.1f} s; wrote " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
