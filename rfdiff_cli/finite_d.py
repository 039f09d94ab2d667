"""Ingredient table for the finite-d theory (docs/theory.md §8, docs/finite_size.md): L_train at τ → ∞ and on a τ grid.

For each rung (d, ψ_p, ψ_n, t) and seed: the exact model (Mehler U, Stein V; gradient-flow curve), the
d → ∞ theory (Theorem 3.1), the norm-spread correction (§4.5) and the conditional kernel deterministic
equivalent (§8) on the same training set. Results are cached one JSON per (rung, seed) in --cache, so
nothing is recomputed; the markdown table goes to stdout (or --out, which needs --overwrite to replace).

    python rfdiff_cli/finite_d.py --rung 16,64,4,0.1 --rung 32,64,4,0.1 --seeds 5
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys

import numpy as np

TAUS = [10.0, 100.0, 1e3, 1e4, 1e5, math.inf]


def _rung(text):
    d, pp, pn, t = text.split(",")
    return int(d), float(pp), float(pn), float(t)


def point(d, psi_p, psi_n, t, seed, cache):
    """Exact and finite-d train losses for one (rung, seed); W, X from numpy.random.default_rng(seed) (W first).

    Keys: ``exact``; ``de_single`` (§8, one nugget) and ``de_types`` (§8, nugget resolved over neuron norms).
    """
    from rfdiff.dynamics import exact_dynamics
    from rfdiff.matrices import train_matrices
    from rfdiff.theory.finite_d import conditional_kernel, nugget, train_loss_de
    fn = os.path.join(cache, f"finite_d_{d}_{psi_p:g}_{psi_n:g}_{t:g}_{seed}.json")
    out = {}
    if os.path.exists(fn):
        with open(fn) as f:
            out = json.load(f)
        if "finite_d" in out:                       # files written before the nugget types existed
            out["de_single"] = out.pop("finite_d")
    p, n = int(round(psi_p * d)), int(round(psi_n * d))
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((p, d))
    X = rng.standard_normal((n, d))
    taus = np.array(TAUS)
    if "exact" not in out:
        fm = train_matrices(W, X, t)
        out["exact"] = np.asarray(exact_dynamics(np.asarray(fm.U), np.asarray(fm.V), t).curves(taus).train_loss).tolist()
    if "de_single" not in out or "de_types" not in out:
        kc = conditional_kernel(X, t, neuron_types=16)
        out["de_types"] = train_loss_de(taus, kc, p).tolist()
        eta, w = nugget(X, t, neuron_types=0)
        out["de_single"] = train_loss_de(taus, dataclasses.replace(kc, eta=eta, eta_weights=w), p).tolist()
    out["taus"] = TAUS
    with open(fn, "w") as f:
        json.dump(out, f)
    return out


def theory(d, psi_p, psi_n, t):
    """d → ∞ and norm-corrected train-loss curves on TAUS (docs/theory.md §4.5–4.6)."""
    from rfdiff.theory import predict
    taus = np.array(TAUS)
    inf = predict("tanh", t, psi_p, psi_n, taus=taus, test_loss=False)
    nc = predict("tanh", t, psi_p, psi_n, taus=taus, test_loss=False, d=d)
    return np.asarray(inf.curves.train_loss), np.asarray(nc.curves.train_loss)


def table(rungs, seeds, cache) -> str:
    """Markdown table: L_train(∞) of each ingredient against the exact seed mean, and the §8 error on the τ grid."""
    rows = ["| d | ψ_p | ψ_n | t | seeds | exact L_train(∞) (mean ± s.e.) | d → ∞ theory | + norm spread (§4.5) "
            "| conditional kernel, one nugget (§8) | + neuron-norm nugget types (§8) | §8 error at τ = 10², 10³, 10⁴, 10⁵ |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for d, pp, pn, t in rungs:
        res = [point(d, pp, pn, t, s, cache) for s in range(seeds)]
        ex = np.array([r["exact"] for r in res])
        one = np.array([r["de_single"] for r in res])
        typ = np.array([r["de_types"] for r in res])
        inf, nc = theory(d, pp, pn, t)
        m = ex[:, -1].mean()
        se = ex[:, -1].std(ddof=1) / math.sqrt(len(res)) if len(res) > 1 else math.nan

        def cell(x, ref=m):
            return f"{x:.4f} ({100 * (x - ref) / ref:+.1f} %)"
        mid = ", ".join(f"{100 * (typ[:, k].mean() - ex[:, k].mean()) / ex[:, k].mean():+.1f} %" for k in (1, 2, 3, 4))
        rows.append(f"| {d} | {pp:g} | {pn:g} | {t:g} | {len(res)} | {m:.4f} ± {se:.4f} | {cell(inf[-1])} | "
                    f"{cell(nc[-1])} | {cell(one[:, -1].mean())} | {cell(typ[:, -1].mean())} | {mid} |")
    return "\n".join(rows) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rung", type=_rung, action="append", required=True, help="d,psi_p,psi_n,t")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--cache", default="/tmp/rfdiff_finite_d")
    ap.add_argument("--out")
    ap.add_argument("--overwrite", action="store_true")
    a = ap.parse_args(argv)
    if a.seeds < 1:
        raise SystemExit("--seeds must be >= 1")
    if a.out and os.path.exists(a.out) and not a.overwrite:
        raise SystemExit(f"{a.out} exists; pass --overwrite")
    os.makedirs(a.cache, exist_ok=True)
    text = table(a.rung, a.seeds, a.cache)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
