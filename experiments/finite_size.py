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
against the exact one (the finite-d correction).

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

SIZES = {
    "full": dict(ds=(16, 24, 32, 48, 64, 100), psi_ns=(4.0, 8.0, 16.0), psi_p=64.0),
    "quick": dict(ds=(12, 16, 24, 32), psi_ns=(4.0, 8.0), psi_p=64.0),
}
TAU_GRID = dict(tau_min=1e-2, tau_max=1e8, n_tau=61)
CURVES = ("taus", "exact", "ge", "theory", "theory_d", "exact_test", "ge_test", "theory_test")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="d ≤ 32, ψ_n ∈ {4, 8} (about a minute)")
    ap.add_argument("--ds", default=None, help="comma-separated d values (overrides the preset)")
    ap.add_argument("--psi-ns", default=None, help="comma-separated ψ_n values (overrides the preset)")
    ap.add_argument("--psi-p", type=float, default=None, help="ψ_p = p/d (default 64)")
    ap.add_argument("--t", type=float, default=0.1, help="diffusion time t")
    ap.add_argument("--seed", type=int, default=1, help="PRNG seed of W and the training set")
    ap.add_argument("--out", default="results", help="folder for JSON + NPZ (and the unit cache)")
    ap.add_argument("--figdir", default="figures", help="folder for PNG + PDF")
    ap.add_argument("--no-plot", action="store_true", help="skip the figure")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = ap.parse_args(argv)
    preset = dict(SIZES["quick" if args.quick else "full"])
    if args.ds:
        preset["ds"] = tuple(int(x) for x in args.ds.split(","))
    if args.psi_ns:
        preset["psi_ns"] = tuple(float(x) for x in args.psi_ns.split(","))
    if args.psi_p is not None:
        preset["psi_p"] = args.psi_p
    if min(preset["ds"]) < 4 or min(preset["psi_ns"]) <= 0 or preset["psi_p"] <= 0 or args.t <= 0:
        ap.error("need d ≥ 4, ψ_n > 0, ψ_p > 0 and t > 0")
    args.sizes = preset
    return args


def gap_unit(params: dict) -> tuple[dict, dict]:
    """One (d, ψ_n, seed): exact, GE-draw and theory train-loss curves and their relative errors."""
    import jax

    from rfdiff import data as rdata
    from rfdiff.dynamics import exact_dynamics
    from rfdiff.features import init_W
    from rfdiff.matrices import population_matrices, train_matrices
    from rfdiff.theory import ge_lowrank_curves, predict

    d, psi_n, psi_p, t, seed = params["d"], params["psi_n"], params["psi_p"], params["t"], params["seed"]
    p, n = int(round(psi_p * d)), int(round(psi_n * d))
    taus = tau_grid(**TAU_GRID)
    kW, kX = jax.random.split(jax.random.PRNGKey(seed))
    W = init_W(kW, p, d)
    data = rdata.isotropic(d)
    X = data.sample(kX, n)
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

    scal = {"d": d, "p": p, "n": n, "psi_n": psi_n, "tau_mem": th["tau_mem"], "exact_s": t_exact,
            "edge_exact": edge, "edge_err": th["lambda_min"] / edge - 1.0, "edge_err_d": th_d["lambda_min"] / edge - 1.0}
    for name, a, b in [("theory_vs_exact", th["train_loss"], exact), ("theory_d_vs_exact", th_d["train_loss"], exact),
                       ("theory_vs_ge", th["train_loss"], ge), ("ge_vs_exact", ge, exact),
                       ("test_theory_vs_exact", th["test_loss"], exact_test), ("test_theory_vs_ge", th["test_loss"], ge_test),
                       ("test_ge_vs_exact", ge_test, exact_test)]:
        scal[name], scal[name + "_inf"] = err(a, b)
    arrays = {"taus": taus, "exact": exact, "ge": ge, "theory": th["train_loss"], "theory_d": th_d["train_loss"],
              "exact_test": exact_test, "ge_test": ge_test, "theory_test": th["test_loss"]}
    return scal, arrays


def fits_by_psi_n(rows: list[dict]) -> dict:
    """Power-law fit of the theory-vs-exact (and GE-vs-exact) error against n, per ψ_n."""
    from analysis.fits import fit_power_law
    out = {}
    for psi_n in sorted({r["psi_n"] for r in rows}):
        sel = [r for r in rows if r["psi_n"] == psi_n]
        if len(sel) < 3:
            continue
        n = np.array([r["n"] for r in sel], float)
        out[str(psi_n)] = {k: fit_power_law(n, np.array([r[k] for r in sel]))
                           for k in ("theory_vs_exact", "ge_vs_exact", "theory_vs_exact_inf", "test_theory_vs_exact")}
        out[str(psi_n)]["n_times_error"] = [float(v) for v in n * np.array([r["theory_vs_exact"] for r in sel])]
    return out


def plot(rows, curves, stem):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rfdiff import io
    fig, (ax, tx, bx) = plt.subplots(1, 3, figsize=(16, 4.4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    nn = np.array(sorted({r["n"] for r in rows}), float)
    for a, pre, what in ((ax, "", "L_train"), (tx, "test_", "L_test")):
        for k, psi_n in enumerate(sorted({r["psi_n"] for r in rows})):
            sel = sorted((r for r in rows if r["psi_n"] == psi_n), key=lambda r: r["n"])
            n = np.array([r["n"] for r in sel])
            c = colors[k % len(colors)]
            a.loglog(n, [r[pre + "theory_vs_exact"] for r in sel], "o-", color=c, label=f"theory vs exact, ψ_n={psi_n:g}")
            if not pre:
                a.loglog(n, [r["theory_d_vs_exact"] for r in sel], "s--", color=c, ms=4, alpha=0.7,
                         label=f"finite-d theory vs exact, ψ_n={psi_n:g}")
            a.loglog(n, [r[pre + "theory_vs_ge"] for r in sel], "^:", color=c, ms=4, alpha=0.7,
                     label=f"theory vs GE draw, ψ_n={psi_n:g}")
        ref = max(r[pre + "theory_vs_exact"] * r["n"] for r in rows)
        a.loglog(nn, ref / nn, "k-", lw=0.8, alpha=0.5, label="∝ 1/n")
        a.axhline(0.02, color="r", lw=0.8, ls="--", label="2 %")
        a.set_xlabel("n (training points)")
        a.set_ylabel(f"max relative error of {what}, τ ≤ 100 τ_mem")
        a.set_title(f"{what}: theory (d → ∞) against finite d")
    ax.legend(fontsize=6, ncol=1)
    key = max(curves, key=lambda k: (curves[k]["d"], -curves[k]["psi_n"]))
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
    bx.set_title(f"d = {cu['d']}, ψ_n = {cu['psi_n']:g}")
    bx.legend(fontsize=7)
    fig.tight_layout()
    files = io.save_figure(fig, stem)
    plt.close(fig)
    return files


def main(argv=None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from rfdiff import io
    sz = args.sizes
    out, figdir = Path(args.out), Path(args.figdir)
    cache = Cache(out / "cache_finite_size")
    grid = [(d, psi_n) for psi_n in sz["psi_ns"] for d in sz["ds"]]
    rows, curves = [], {}
    t0 = time.perf_counter()
    for d, psi_n in tqdm(grid, disable=args.no_progress, desc="finite size", unit="point", file=sys.stderr):
        params = {"d": d, "psi_n": psi_n, "psi_p": sz["psi_p"], "t": args.t, "seed": args.seed}
        r = cache.get("ltrain_gap", params, gap_unit)
        rows.append({k: v for k, v in r.items() if k not in CURVES and not k.startswith("_")})
        curves[f"d{d}_psin{psi_n:g}"] = {"d": d, "psi_n": psi_n, **{k: r[k] for k in CURVES}}
    fits = fits_by_psi_n(rows)
    name = f"finite_size{'_quick' if args.quick else ''}_s{args.seed}"
    result = {"config": {**sz, "t": args.t, "seed": args.seed, "tau_grid": TAU_GRID}, "rows": rows, "fits": fits,
              "wall_s": time.perf_counter() - t0, "metadata": io.run_metadata()}
    files = [io.save_json(out / f"{name}.json", result),
             io.save_npz(out / f"{name}.npz", {f"{k}_{a}": v[a] for k, v in curves.items()
                                               for a in CURVES})]
    if not args.no_plot:
        files += plot(rows, curves, figdir / f"finite_size{'_quick' if args.quick else ''}")
    print("max relative error over τ ≤ 100 τ_mem (train: L_train; test: L_test)")
    print(f"{'d':>4} {'p':>6} {'n':>5} {'ψ_n':>5} | {'theory vs exact':>15} {'finite-d vs exact':>17} "
          f"{'theory vs GE':>12} {'GE vs exact':>11} | {'n × err':>7} | {'mem. edge err (∞, d)':>20} | "
          f"{'test: theory vs exact':>21} {'vs GE':>7}")
    for r in rows:
        print(f"{r['d']:4d} {r['p']:6d} {r['n']:5d} {r['psi_n']:5g} | {r['theory_vs_exact']:15.2%} "
              f"{r['theory_d_vs_exact']:17.2%} {r['theory_vs_ge']:12.2%} {r['ge_vs_exact']:11.2%} | "
              f"{r['n'] * r['theory_vs_exact']:7.1f} | {r['edge_err']:+9.1%} {r['edge_err_d']:+9.1%}  | "
              f"{r['test_theory_vs_exact']:21.2%} {r['test_theory_vs_ge']:7.2%}")
    for psi_n, f in fits.items():
        fe = f["theory_vs_exact"]
        print(f"ψ_n = {psi_n}: theory-vs-exact error ∝ n^{fe['slope']:.2f} ± {fe['slope_se']:.2f}; "
              f"GE-vs-exact ∝ n^{f['ge_vs_exact']['slope']:.2f}; test loss theory-vs-exact ∝ "
              f"n^{f['test_theory_vs_exact']['slope']:.2f}")
    print(f"wall {result['wall_s']:.1f} s; wrote " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
