#!/usr/bin/env python
"""Generation with RF scores: memorisation f_mem and quality vs training time τ for several n (SPEC §5).

For each training-set size n (and seed): train one RF score per grid time with the exact dynamics
to every τ of a log grid (plus τ = ∞), sample with the reverse SDE, measure f_mem (k = 1/3, 1/2,
1/4, bootstrap 95% CIs), the fraction closer to the training set than to a fresh test set, and
the Gaussian KL / W₂ of the samples' moments against the true noised law. Also: collapse under
τ/n, EMM_ε(τ), the early-stopping rule τ_stop = c·n calibrated at the smallest n, a two-class
Gaussian mixture, and the generation-level τ_mem next to the loss-level τ_mem (gen. gap of
ExactDynamics.curves) and the theory ψ_p/(Δ_t λ_min).

Example: python experiments/generation.py --quick
Writes <out>/generation[_quick].json|.npz and <figures>/generation_*.png|.pdf.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
KS = (1.0 / 3.0, 0.5, 0.25)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small smoke-test sizes (≈ 1-2 min on 2 cores)")
    ap.add_argument("--seed", type=int, default=0, help="base PRNG seed")
    ap.add_argument("--out", default=str(ROOT / "results"), help="folder for JSON + NPZ")
    ap.add_argument("--figdir", "--figures", dest="figures", default=str(ROOT / "figures"), help="folder for PNG + PDF figures")
    ap.add_argument("--d", type=int, default=None, help="data dimension (default 16; quick 8)")
    ap.add_argument("--p", type=int, default=None, help="random features per grid time (default 1024; quick 256)")
    ap.add_argument("--n", type=str, default=None, help="comma-separated training-set sizes (default 2,4,8,16,32,64,128; quick 4,16,64)")
    ap.add_argument("--seeds", type=int, default=None, help="independent repetitions per n (default 2; quick 1)")
    ap.add_argument("--samples", type=int, default=None, help="generated samples per (n, τ) (default 2000; quick 500)")
    ap.add_argument("--steps", type=int, default=None, help="reverse steps (default 100; quick 60)")
    ap.add_argument("--n-times", type=int, default=None, help="grid times per score (default 12; quick 6)")
    ap.add_argument("--t-min", type=float, default=0.01, help="smallest diffusion time")
    ap.add_argument("--t-max", type=float, default=5.0, help="largest diffusion time")
    ap.add_argument("--activation", default="tanh", help="activation σ of the RF scores (tanh, erf, gelu, relu_centered)")
    ap.add_argument("--compare-activation", default="gelu",
                    help="non-odd activation run at the smallest n values for comparison ('none' to skip)")
    ap.add_argument("--method", default="sde", choices=("sde", "ode"), help="reverse SDE or probability-flow ODE")
    ap.add_argument("--mu-norm", type=float, default=3.0, help="‖μ‖ of the two-class mixture ½N(μ,I)+½N(-μ,I)")
    ap.add_argument("--f-max", type=float, default=0.1, help="best-in-hindsight τ: lowest KL among τ with f_mem ≤ f_max")
    ap.add_argument("--no-progress", action="store_true", help="hide progress bars")
    ap.add_argument("--replot", action="store_true", help="redraw the figures from saved results (no computation)")
    ns = ap.parse_args(argv)
    q = ns.quick
    defaults = dict(d=(8, 16), p=(256, 1024), n=("4,16,64", "2,4,8,16,32,64,128"), seeds=(1, 2),
                    samples=(500, 2000), steps=(60, 100), n_times=(6, 12))
    for k, (vq, vf) in defaults.items():
        if getattr(ns, k) is None:
            setattr(ns, k, vq if q else vf)
    ns.n_values = sorted({int(x) for x in ns.n.split(",")})
    ns.taus = np.concatenate([np.geomspace(1.0, 1e6, 7) if q else np.geomspace(1.0, 1e7, 15), [np.inf]])
    ns.mixture_n = [8, 32] if q else [8, 32, 128]
    ns.compare_n = ns.n_values[:1] if q else ns.n_values[:2]
    ns.curve_taus = np.geomspace(1e-1, 1e8, 37 if q else 73)
    return ns


def validate(a):
    for k in ("d", "p", "seeds", "samples", "steps", "n_times"):
        if getattr(a, k) <= 0:
            raise ValueError(f"--{k.replace('_', '-')} must be positive, got {getattr(a, k)}")
    if min(a.n_values) < 2:
        raise ValueError("every n must be >= 2 (f_mem needs a second-nearest training point)")
    if not 0 < a.t_min < a.t_max:
        raise ValueError(f"need 0 < t_min < t_max, got {a.t_min}, {a.t_max}")


# ----------------------------------------------------------------------------- one (data, n, seed) run

def run_one(a, data, n, seed, taus, bar_desc, progress, activation=None):
    """Train the score grid, sample at every τ, measure; returns a dict of arrays and scalars.

    f_mem is measured against the training set X and (``fmem_sym``) against {X, -X}: an odd
    activation makes every RF score odd, so its memorising limit reproduces ±x^ν.
    """
    import jax

    from rfdiff import memorization as M
    from rfdiff import sampling as S
    from rfdiff import timescales

    key = jax.random.PRNGKey(a.seed * 100003 + seed * 1009 + n)
    k_x, k_test, k_w, k_s, k_boot, k_ref = jax.random.split(key, 6)
    X = np.asarray(data.sample(k_x, n), dtype=np.float64)
    test = np.asarray(data.sample(k_test, n), dtype=np.float64)
    Pt = data.noised(a.t_min)
    mean_true, cov_true = Pt.weights @ Pt.means, Pt.covariance()
    t0 = time.perf_counter()
    with progress(total=a.n_times, desc=bar_desc, leave=False) as bar:
        G = S.train_score_grid(k_w, X, taus, a.p, t_min=a.t_min, t_max=a.t_max, n_times=a.n_times,
                               data=data, curve_taus=a.curve_taus, activation=activation or a.activation,
                               callback=lambda k, t: bar.update(1))
    t_train = time.perf_counter() - t0
    T = taus.size
    res = {"fmem": np.zeros((len(KS), T)), "fmem_lo": np.zeros((len(KS), T)), "fmem_hi": np.zeros((len(KS), T)),
           "fmem_sym": np.zeros((len(KS), T)), "closer_train": np.zeros(T), "kl": np.zeros(T), "w2": np.zeros(T), "balance": np.zeros(T)}
    mu_dir = data.means[0] / (np.linalg.norm(data.means[0]) or 1.0)

    def measure(y):
        y = np.asarray(y)
        r = M.distance_ratio(y, X)
        rep = M.f_mem_report(k_boot, r, KS, n_boot=1000)
        r_sym = M.distance_ratio(y, np.concatenate([X, -X]))
        rep["sym"] = [M.f_mem(r_sym, k) for k in KS]
        q = M.gaussian_quality(y, mean_true, cov_true)
        bal = abs(float(np.mean(y @ mu_dir > 0)) - 0.5) if data.n_components == 2 else float("nan")
        return rep, M.closer_to_train_fraction(y, X, test), q, bal

    t0 = time.perf_counter()
    for i in range(T):   # common random numbers across τ (same sampling key)
        y = S.sample_rf(k_s, G, a.samples, tau_index=i, n_steps=a.steps, method=a.method)
        rep, ct, q, bal = measure(y)
        for j, k in enumerate(KS):
            res["fmem"][j, i], res["fmem_lo"][j, i], res["fmem_hi"][j, i] = rep[f"{k:.4g}"]
            res["fmem_sym"][j, i] = rep["sym"][j]
        res["closer_train"][i], res["kl"][i], res["w2"][i], res["balance"][i] = ct, q["kl"], q["w2"], bal
    t_sample = time.perf_counter() - t0
    kw = dict(t_min=a.t_min, t_max=a.t_max, n_steps=a.steps, method=a.method)
    refs = {}
    for name, y in (("population", S.sample_population(k_ref, data, a.samples, **kw)),
                    ("empirical", S.sample_empirical(k_ref, X, a.samples, **kw))):
        rep, ct, q, bal = measure(y)
        refs[name] = {"fmem": [rep[f"{k:.4g}"][0] for k in KS], "fmem_sym": rep["sym"], "closer_train": ct, "kl": q["kl"], "w2": q["w2"],
                      "kl_floor": q["kl_floor"], "balance": bal}
    # loss level: τ where the generalisation gap reaches ½ of its final value, per grid time
    loss_tau_mem = []
    for rec in G.info["per_time"]:
        gap = np.asarray(rec["curves"]["gen_gap"])
        loss_tau_mem.append(timescales.tau_mem(a.curve_taus, gap, frac=0.5)["tau_mem"])
    res.update(refs=refs, loss_tau_mem=np.asarray(loss_tau_mem), grid_times=G.times,
               lam_ordered=np.array([r["lam_ordered"] if r["lam_ordered"] is not None else np.nan
                                     for r in G.info["per_time"]]),
               gen_gap=np.array([r["curves"]["gen_gap"] for r in G.info["per_time"]]),
               score_error=np.array([r["curves"]["score_error"] for r in G.info["per_time"]]),
               seconds_train=t_train, seconds_sample=t_sample,
               mehler_orders=[r["mehler_order"] for r in G.info["per_time"]])
    return res


def gen_tau_mem(taus, fmem_row):
    """Generation-level τ_mem: τ where f_mem reaches half of its τ = ∞ value (log-interpolated)."""
    from rfdiff import memorization as M

    f_inf = fmem_row[-1]
    if not f_inf > 0:
        return float("nan")
    return M.crossing_time(taus[:-1], fmem_row[:-1], 0.5 * f_inf)


def theory_tau_mem(a, t, n):
    """ψ_p/(Δ_t λ_min), λ_min = s_t² + v_t²(1 - √(ψ_p/ψ_n))² (Theorem 3.2), or nan if unavailable."""
    try:
        from rfdiff.diffusion import delta
        from rfdiff.theory import rho1_edges, spectrum_params

        P = spectrum_params(a.activation, t, a.p / a.d, n / a.d)
        lo, _ = rho1_edges(P)
        return (a.p / a.d) / (delta(t) * lo)
    except Exception:  # noqa: BLE001 - theory is optional here
        return float("nan")


# ----------------------------------------------------------------------------- figures

def _colors(m):
    import matplotlib.pyplot as plt

    return plt.cm.viridis(np.linspace(0.0, 0.9, m))


def _tau_x(taus):
    """Plot positions: finite τ as is, τ = ∞ one decade beyond the last finite value."""
    x = taus.copy()
    x[~np.isfinite(x)] = taus[np.isfinite(taus)].max() * 10
    return x


def _n_axis(ax, ns):
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_xticks(list(ns))
    ax.set_xticklabels([str(n) for n in ns])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _tau_axis(ax, taus):
    ax.set_xscale("log")
    ax.axvline(_tau_x(taus)[-1] / 3.3, color="grey", lw=0.5)
    ax.set_xlabel("training time τ (rightmost point: τ = ∞)")


def figures(a, R, figdir, suffix):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    from rfdiff import io

    taus, ns = a.taus, np.asarray(a.n_values)
    x = _tau_x(taus)
    cols = _colors(len(ns))
    F = R["fmem"].mean(axis=1)            # (n, k, T) seed-averaged
    Fs = R["fmem_sym"].mean(axis=1)
    lo, hi = R["fmem_lo"].mean(axis=1), R["fmem_hi"].mean(axis=1)
    KL = R["kl"].mean(axis=1)
    odd = R["odd"]
    files = []

    def save(fig, name):
        files.extend(io.save_figure(fig, Path(figdir) / f"generation_{name}{suffix}"))
        plt.close(fig)

    # 1. f_mem and quality vs τ (the analogue of the U-Net figure)
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    for i, n in enumerate(ns):
        ax[0].plot(x, F[i, 0], "o-", color=cols[i], ms=3, label=f"n = {n}")
        ax[0].fill_between(x, lo[i, 0], hi[i, 0], color=cols[i], alpha=0.2)
        if odd:
            ax[0].plot(x, Fs[i, 0], "--", color=cols[i], lw=1)
        ax[1].plot(x, KL[i], "o-", color=cols[i], ms=3, label=f"n = {n}")
        ax[2].plot(x, R["closer_train"][i].mean(0), "o-", color=cols[i], ms=3)
    if odd:
        ax[0].plot([], [], "k--", lw=1, label="against {±x^ν} (odd σ)")
    ax[1].axhline(np.mean(R["ref_pop_kl"]), color="k", ls=":", label="exact population score")
    ax[2].axhline(0.5, color="k", ls=":")
    for k_ in ax:
        _tau_axis(k_, taus)
    ax[1].set_yscale("log")
    ax[0].set_ylabel("f_mem (k = 1/3), 95% bootstrap band")
    ax[1].set_ylabel("KL(N(mean̂, Σ̂) ‖ P_tmin)")
    ax[2].set_ylabel("fraction closer to train than to test")
    ax[0].legend(fontsize=8)
    ax[1].legend(fontsize=8)
    fig.suptitle(f"RF-score generation ({a.activation}), isotropic Gaussian d = {a.d}, p = {a.p} per time, "
                 f"{a.n_times} grid times, {a.samples} samples, {a.seeds} seed(s)")
    save(fig, "fmem_quality")

    # 2. collapse under τ/n
    fig, ax = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    fin = np.isfinite(taus)
    G2 = Fs if odd else F
    for i, n in enumerate(ns):
        ax[0].plot(taus[fin] / n, F[i, 0, fin], "o-", color=cols[i], ms=3, label=f"n = {n}")
        if G2[i, 0, -1] > 0:
            ax[1].plot(taus[fin] / n, G2[i, 0, fin] / G2[i, 0, -1], "o-", color=cols[i], ms=3)
    for k_ in ax:
        k_.set_xscale("log")
        k_.set_xlabel("τ / n")
    ax[0].set_ylabel("f_mem (k = 1/3)")
    ax[1].set_ylabel("f_mem / f_mem(τ = ∞)" + (" against {±x^ν}" if odd else ""))
    ax[0].legend(fontsize=8)
    fig.suptitle("collapse of the memorisation curves under τ/n")
    save(fig, "collapse")

    # 3. EMM
    fig, ax = plt.subplots(figsize=(6.5, 4.2), constrained_layout=True)
    for key, st, lab in (("0.1", "o-", "EMM_0.1"), ("0.5", "s--", "EMM_0.5"), ("sym_0.1", "^-", "EMM_0.1 against {±x^ν}"),
                         ("sym_0.5", "v--", "EMM_0.5 against {±x^ν}")):
        if key in R["emm"]:
            e = np.asarray(R["emm"][key], dtype=float)
            ax.plot(x, np.where(e > 0, e, np.nan), st, label=lab)
    ax.set_xscale("log")
    empty = [lab for key, _, lab in (("0.1", 0, "EMM_0.1"), ("0.5", 0, "EMM_0.5"), ("sym_0.1", 0, "EMM_0.1 ±x"),
                                      ("sym_0.5", 0, "EMM_0.5 ±x")) if key in R["emm"] and not np.any(R["emm"][key] > 0)]
    if empty:
        ax.text(0.02, 0.95, "no n qualifies at any τ: " + ", ".join(empty), transform=ax.transAxes, fontsize=8, va="top")
    ax.set_yscale("log")
    ax.set_yticks(list(ns))
    ax.set_yticklabels([str(n) for n in ns])
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(min(ns) / 1.5, max(ns) * 3)
    ax.set_xlim(x[0] / 2, x[-1] * 2)
    ax.set_xlabel("training time τ (rightmost: ∞)")
    ax.set_ylabel("largest n with E f_mem ≥ 1 − ε")
    ax.set_title(f"effective model memorisation, n ∈ {[int(n) for n in ns]} (absent: no n qualifies)", fontsize=9)
    ax.legend(fontsize=8)
    save(fig, "emm")

    # 4. early stopping
    es = R["early_stopping"]
    fig, ax = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    ax[0].plot(ns, es["tau_best"], "o-", label="best in hindsight τ*(n)")
    ax[0].plot(ns, es["tau_stop"], "s--", label=f"τ_stop = c·n, c = {es['c']:.3g}")
    ax[0].set_yscale("log")
    ax[0].set_ylabel("τ")
    ax[1].plot(ns, es["kl_best"], "o-", label="at τ*(n)")
    ax[1].plot(ns, es["kl_stop"], "s--", label="at τ_stop = c·n")
    ax[1].set_yscale("log")
    ax[1].set_ylabel("KL (Gaussian moments)")
    ax[2].plot(ns, es["fmem_best"], "o-", label="at τ*(n)")
    ax[2].plot(ns, es["fmem_stop"], "s--", label="at τ_stop = c·n")
    ax[2].set_ylabel("f_mem (k = 1/3)")
    for k_ in ax:
        _n_axis(k_, ns)
        k_.set_xlabel("n")
        k_.legend(fontsize=8)
    fig.suptitle(f"early stopping τ_stop = c·n calibrated at n = {ns[0]} "
                 f"(τ*: lowest KL among grid τ with f_mem ≤ {a.f_max:g})")
    save(fig, "early_stopping")

    # 5. mixture
    Mx = R["mixture"]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    mc = _colors(len(Mx["n"]))
    for i, n in enumerate(Mx["n"]):
        ax[0].plot(x, Mx["fmem"][i, 0], "o-", color=mc[i], ms=3, label=f"n = {n}")
        ax[0].fill_between(x, Mx["fmem_lo"][i, 0], Mx["fmem_hi"][i, 0], color=mc[i], alpha=0.2)
        if odd:
            ax[0].plot(x, Mx["fmem_sym"][i, 0], "--", color=mc[i], lw=1)
        ax[1].plot(x, Mx["kl"][i], "o-", color=mc[i], ms=3)
        ax[2].plot(x, Mx["balance"][i], "o-", color=mc[i], ms=3)
    if odd:
        ax[0].plot([], [], "k--", lw=1, label="against {±x^ν}")
    ax[1].axhline(np.mean(Mx["ref_pop_kl"]), color="k", ls=":", label="exact population score")
    ax[2].axhline(np.mean(Mx["ref_pop_balance"]), color="k", ls=":", label="exact population score")
    for k_ in ax:
        _tau_axis(k_, taus)
    ax[1].set_yscale("log")
    ax[0].set_ylabel("f_mem (k = 1/3)")
    ax[1].set_ylabel("KL of moments (vs mixture mean, cov)")
    ax[2].set_ylabel("|fraction in the +μ class − ½|")
    ax[0].legend(fontsize=8)
    ax[1].legend(fontsize=8)
    fig.suptitle(f"two-class mixture ½N(μ, I) + ½N(−μ, I), ‖μ‖ = {a.mu_norm:g}, d = {a.d}, p = {a.p}, {a.activation}")
    save(fig, "mixture")

    # 6. τ_mem: generation vs loss level vs theory
    fig, ax = plt.subplots(figsize=(10, 5.2), constrained_layout=True)
    gt = R["grid_times"]
    sel = sorted({0} | {int(np.argmin(abs(np.log(gt / t)))) for t in (0.1, 0.3, 1.0)})
    tc = _colors(len(sel))
    for c_, j in zip(tc, sel):
        ax.plot(ns, np.nanmean(R["loss_tau_mem"][:, :, j], axis=1), "-", color=c_,
                label=f"loss: gen. gap reaches ½ final, t = {gt[j]:.2g}")
        ax.plot(ns, R["theory_tau_mem"][:, j], ":", color=c_, label=f"theory ψ_p/(Δ_t λ_min), t = {gt[j]:.2g}")
    g = R["gen_tau_mem"]
    gm = np.nanmean(g, axis=1)
    ax.errorbar(ns, gm, yerr=np.nanstd(g, axis=1) if g.shape[1] > 1 else None,
                fmt="ko", ms=7, capsize=3, label="samples: f_mem reaches ½ f_mem(∞)")
    if np.any(np.isfinite(gm)):
        ax.plot(ns, ns * np.nanmedian(gm / ns), "k--", lw=0.8, label="∝ n")
    ax.set_yscale("log")
    _n_axis(ax, ns)
    ax.set_xlabel("n (training-set size)")
    ax.set_ylabel("τ_mem")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.set_title(f"memorisation time of the samples vs of the losses (d = {a.d}, p = {a.p}, {a.activation})",
                 fontsize=10)
    save(fig, "tau_mem")

    # 7. odd vs non-odd activation
    C = R.get("compare")
    if C:
        fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
        for i, n in enumerate(C["n"]):
            ls = ["-", "--"][i % 2]
            j = list(ns).index(n)
            ax.plot(x, F[j, 0], "o" + ls, color="C0", ms=3, label=f"{a.activation}, n = {n}")
            ax.plot(x, Fs[j, 0], "^" + ls, color="C1", ms=3, label=f"{a.activation} against {{±x^ν}}, n = {n}")
            ax.plot(x, C["fmem"][i, 0], "s" + ls, color="C2", ms=3, label=f"{C['activation']}, n = {n}")
        _tau_axis(ax, taus)
        ax.set_ylabel("f_mem (k = 1/3)")
        ax.set_title(f"an odd σ gives an odd score: it memorises {{±x^ν}} (d = {a.d}, p = {a.p})", fontsize=10)
        ax.legend(fontsize=7)
        save(fig, "activation")
    return files


# ----------------------------------------------------------------------------- main

def replot(a) -> list:
    """Redraw the figures from ``<out>/generation[_quick].json|.npz`` (config taken from the JSON)."""
    import json

    suffix = "_quick" if a.quick else ""
    stem = Path(a.out) / f"generation{suffix}"
    res = json.loads(stem.with_suffix(".json").read_text())
    z = np.load(stem.with_suffix(".npz"))
    cfg = res["config"]
    for k in ("d", "p", "seeds", "samples", "steps", "n_times", "activation", "f_max", "mu_norm", "n_values"):
        setattr(a, k, cfg[k])
    a.taus = z["taus"]
    R = {k: z[k] for k in ("fmem", "fmem_lo", "fmem_hi", "fmem_sym", "closer_train", "kl", "loss_tau_mem",
                           "gen_tau_mem", "theory_tau_mem", "grid_times")}
    R["odd"] = bool(res["summary"]["odd_activation"])
    R["emm"] = {k[4:]: z[k] for k in z.files if k.startswith("emm_")}
    R["early_stopping"] = res["summary"]["early_stopping"]
    R["ref_pop_kl"] = [r["references"]["population"]["kl"] for r in res["runs"] if "seed" in r]
    R["mixture"] = {k[8:]: z[k] for k in z.files if k.startswith("mixture_")}
    R["mixture"]["n"] = [int(n) for n in R["mixture"]["n"]]
    if "compare_fmem" in z.files:
        R["compare"] = {"fmem": z["compare_fmem"], "fmem_sym": z["compare_fmem_sym"], "kl": z["compare_kl"],
                        "n": cfg["compare_n"], "activation": cfg["compare_activation"]}
    return figures(a, R, a.figures, suffix)


def main(argv=None) -> int:
    a = parse_args(argv)
    try:
        validate(a)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if a.replot:
        files = replot(a)
        print("wrote: " + ", ".join(str(f) for f in files))
        return 0
    from functools import partial

    from tqdm import tqdm

    from rfdiff import data as D
    from rfdiff import io
    from rfdiff import memorization as M
    from rfdiff.sampling import activation_is_odd

    progress = partial(tqdm, disable=a.no_progress, file=sys.stderr)
    t_all = time.perf_counter()
    data = D.isotropic(a.d)
    ns, S_, T = a.n_values, a.seeds, a.taus.size
    fin = np.isfinite(a.taus)
    R = {k: np.full((len(ns), S_) + shape, np.nan) for k, shape in
         (("fmem", (len(KS), T)), ("fmem_lo", (len(KS), T)), ("fmem_hi", (len(KS), T)), ("fmem_sym", (len(KS), T)),
          ("closer_train", (T,)), ("kl", (T,)), ("w2", (T,)), ("loss_tau_mem", (a.n_times,)),
          ("lam_ordered", (a.n_times,)))}
    R["gen_tau_mem"] = np.full((len(ns), S_), np.nan)
    R["odd"] = activation_is_odd(a.activation)
    refs = {k: [] for k in ("pop_kl", "pop_fmem", "emp_fmem", "emp_kl")}
    stop = {"tau_stop": [], "kl_stop": [], "fmem_stop": [], "c": None}
    gen_gap, score_error, runs_meta = [], [], []
    compare_on = a.compare_activation.lower() != "none"
    outer = progress(total=len(ns) * S_ + len(a.mixture_n) + (len(a.compare_n) if compare_on else 0),
                     desc="generation")
    for i, n in enumerate(ns):
        extra = [] if stop["c"] is None else [stop["c"] * n]
        taus_n = np.concatenate([a.taus[:-1], extra, a.taus[-1:]])
        keep = np.r_[np.arange(T - 1), taus_n.size - 1]          # the table without the τ_stop column
        kl_stop, f_stop = [], []
        for s in range(S_):
            res = run_one(a, data, n, s, taus_n, f"n={n} seed={s}", progress)
            for k in ("fmem", "fmem_lo", "fmem_hi", "fmem_sym"):
                R[k][i, s] = res[k][:, keep]
            for k in ("closer_train", "kl", "w2"):
                R[k][i, s] = res[k][keep]
            R["loss_tau_mem"][i, s] = res["loss_tau_mem"]
            R["lam_ordered"][i, s] = res["lam_ordered"]
            R["gen_tau_mem"][i, s] = gen_tau_mem(a.taus, R["fmem"][i, s, 0])
            refs["pop_kl"].append(res["refs"]["population"]["kl"])
            refs["pop_fmem"].append(res["refs"]["population"]["fmem"][0])
            refs["emp_fmem"].append(res["refs"]["empirical"]["fmem"][0])
            refs["emp_kl"].append(res["refs"]["empirical"]["kl"])
            R["grid_times"] = res["grid_times"]
            if s == 0:
                gen_gap.append(res["gen_gap"])
                score_error.append(res["score_error"])
            if extra:
                kl_stop.append(res["kl"][T - 1])
                f_stop.append(res["fmem"][0, T - 1])
            runs_meta.append({"n": n, "seed": s, "seconds_train": res["seconds_train"],
                              "seconds_sample": res["seconds_sample"], "mehler_orders": res["mehler_orders"],
                              "references": res["refs"]})
            outer.update(1)
        kl_mean, f_mean = R["kl"][i].mean(0)[fin], R["fmem"][i, :, 0].mean(0)[fin]
        if stop["c"] is None:   # calibrate at the smallest n on the seed-averaged curves
            j = M.best_stopping_time(a.taus[fin], kl_mean, f_mean, a.f_max)
            stop["c"] = M.calibrate_early_stopping(n, a.taus[fin][j])
            stop["tau_stop"].append(float(a.taus[fin][j]))
            stop["kl_stop"].append(float(kl_mean[j]))
            stop["fmem_stop"].append(float(f_mean[j]))
        else:
            stop["tau_stop"].append(float(stop["c"] * n))
            stop["kl_stop"].append(float(np.mean(kl_stop)))
            stop["fmem_stop"].append(float(np.mean(f_stop)))
    best = [M.best_stopping_time(a.taus[fin], R["kl"][i].mean(0)[fin], R["fmem"][i, :, 0].mean(0)[fin], a.f_max)
            for i in range(len(ns))]
    stop.update(tau_best=[float(a.taus[fin][j]) for j in best],
                kl_best=[float(R["kl"][i].mean(0)[fin][j]) for i, j in enumerate(best)],
                fmem_best=[float(R["fmem"][i, :, 0].mean(0)[fin][j]) for i, j in enumerate(best)])
    R["early_stopping"] = stop
    R["ref_pop_kl"] = refs["pop_kl"]
    R["emm"] = {}
    for eps in (0.1, 0.5):
        R["emm"][f"{eps:g}"] = M.emm(ns, R["fmem"][:, :, 0].transpose(1, 0, 2), eps)
        if R["odd"]:
            R["emm"][f"sym_{eps:g}"] = M.emm(ns, R["fmem_sym"][:, :, 0].transpose(1, 0, 2), eps)
    R["theory_tau_mem"] = np.array([[theory_tau_mem(a, float(t), n) for t in R["grid_times"]] for n in ns])

    # structured case: two-class mixture
    mix = D.two_class_mixture(a.d, a.mu_norm, 1.0)
    Mx = {k: [] for k in ("fmem", "fmem_lo", "fmem_hi", "fmem_sym", "kl", "w2", "balance", "closer_train",
                          "ref_pop_kl", "ref_pop_balance", "ref_emp_fmem")}
    for n in a.mixture_n:
        res = run_one(a, mix, n, 0, a.taus, f"mixture n={n}", progress)
        for k in ("fmem", "fmem_lo", "fmem_hi", "fmem_sym", "kl", "w2", "balance", "closer_train"):
            Mx[k].append(res[k])
        Mx["ref_pop_kl"].append(res["refs"]["population"]["kl"])
        Mx["ref_pop_balance"].append(res["refs"]["population"]["balance"])
        Mx["ref_emp_fmem"].append(res["refs"]["empirical"]["fmem"][0])
        runs_meta.append({"data": "mixture", "n": n, "seconds_train": res["seconds_train"],
                          "seconds_sample": res["seconds_sample"], "references": res["refs"]})
        outer.update(1)
    Mx = {k: np.asarray(v) for k, v in Mx.items()}
    Mx["n"] = a.mixture_n
    R["mixture"] = Mx

    # the same study at the smallest n with a non-odd activation
    if compare_on:
        C = {"fmem": [], "fmem_sym": [], "kl": [], "n": a.compare_n, "activation": a.compare_activation}
        for n in a.compare_n:
            res = run_one(a, data, n, 0, a.taus, f"{a.compare_activation} n={n}", progress,
                          activation=a.compare_activation)
            for k in ("fmem", "fmem_sym", "kl"):
                C[k].append(res[k])
            runs_meta.append({"activation": a.compare_activation, "n": n, "seconds_train": res["seconds_train"],
                              "seconds_sample": res["seconds_sample"], "references": res["refs"]})
            outer.update(1)
        C.update({k: np.asarray(C[k]) for k in ("fmem", "fmem_sym", "kl")})
        R["compare"] = C
    outer.close()

    suffix = "_quick" if a.quick else ""
    files = figures(a, R, a.figures, suffix)
    F, Fs = R["fmem"][:, :, 0].mean(1), R["fmem_sym"][:, :, 0].mean(1)
    tau_labels = ["inf" if not np.isfinite(t) else f"{t:.3g}" for t in a.taus]
    summary = {
        "tau_labels": tau_labels,
        "fmem_k1/3_vs_tau": {str(n): F[i].tolist() for i, n in enumerate(ns)},
        "fmem_sym_k1/3_vs_tau": {str(n): Fs[i].tolist() for i, n in enumerate(ns)},
        "fmem_tau_inf_vs_n": dict(zip(map(str, ns), F[:, -1].tolist())),
        "kl_vs_tau": {str(n): R["kl"][i].mean(0).tolist() for i, n in enumerate(ns)},
        "gen_tau_mem_vs_n": dict(zip(map(str, ns), np.nanmean(R["gen_tau_mem"], 1).tolist())),
        "loss_tau_mem_smallest_t_vs_n": dict(zip(map(str, ns), np.nanmean(R["loss_tau_mem"][:, :, 0], 1).tolist())),
        "emm": {k: np.asarray(v).tolist() for k, v in R["emm"].items()},
        "early_stopping": stop,
        "odd_activation": R["odd"],
        "references": {"population_fmem_mean": float(np.mean(refs["pop_fmem"])),
                       "empirical_fmem_mean": float(np.mean(refs["emp_fmem"])),
                       "population_kl_mean": float(np.mean(refs["pop_kl"])),
                       "empirical_kl_mean": float(np.mean(refs["emp_kl"]))},
        "mixture_fmem_vs_tau": {str(n): Mx["fmem"][i, 0].tolist() for i, n in enumerate(a.mixture_n)},
    }
    if compare_on:
        summary["compare_activation"] = {"activation": a.compare_activation,
                                         "fmem_vs_tau": {str(n): R["compare"]["fmem"][i, 0].tolist()
                                                         for i, n in enumerate(a.compare_n)}}
    cfg = {k: getattr(a, k) for k in ("quick", "seed", "d", "p", "n_values", "seeds", "samples", "steps", "n_times",
                                       "t_min", "t_max", "method", "activation", "compare_activation", "compare_n",
                                       "mu_norm", "f_max", "mixture_n")}
    cfg.update(taus=a.taus, curve_taus=a.curve_taus, ks=KS, data="isotropic(sigma_x=1)",
               tau_mem_generation="tau where f_mem(k=1/3) reaches 1/2 of f_mem(tau=inf) (log-interpolated)",
               tau_mem_loss="tau where gen_gap reaches 1/2 of its value at curve_taus[-1] (per grid time)",
               quality="KL(N(mean_hat, cov_hat) || N(mean, cov) of P_{t_min}) from sample moments",
               fmem_sym="f_mem against {X, -X} (what an odd score can memorise)")
    result = {"config": cfg, "summary": summary, "runs": runs_meta, "figures": [str(f) for f in files],
              "metadata": io.run_metadata(), "seconds_total": time.perf_counter() - t_all}
    arrays = {k: R[k] for k in ("fmem", "fmem_lo", "fmem_hi", "fmem_sym", "closer_train", "kl", "w2",
                                "loss_tau_mem", "lam_ordered", "gen_tau_mem", "theory_tau_mem", "grid_times")}
    arrays.update(taus=a.taus, n_values=np.asarray(ns), curve_taus=a.curve_taus,
                  gen_gap_seed0=np.asarray(gen_gap), score_error_seed0=np.asarray(score_error),
                  **{f"emm_{k}": np.asarray(v) for k, v in R["emm"].items()},
                  **{f"mixture_{k}": np.asarray(v) for k, v in Mx.items()})
    if compare_on:
        arrays.update({f"compare_{k}": R["compare"][k] for k in ("fmem", "fmem_sym", "kl")})
    out = Path(a.out)
    name = f"generation{suffix}"
    files.append(io.save_npz(out / f"{name}.npz", arrays))
    files.append(io.save_json(out / f"{name}.json", result))

    print(f"\nRF-score generation ({a.activation}): d={a.d} p={a.p} grid={a.n_times} samples={a.samples} "
          f"seeds={a.seeds}")
    print("τ:                " + " ".join(f"{lab:>6}" for lab in tau_labels))
    for i, n in enumerate(ns):
        print(f"f_mem     n={n:<5d} " + " ".join(f"{v:6.3f}" for v in F[i]))
        if R["odd"]:
            print(f"f_mem(±X) n={n:<5d} " + " ".join(f"{v:6.3f}" for v in Fs[i]))
    print(f"references: population-score f_mem {np.mean(refs['pop_fmem']):.4f}, empirical-score f_mem "
          f"{np.mean(refs['emp_fmem']):.4f}")
    print(f"early stopping c = {stop['c']:.3g}: τ_stop {[round(t, 1) for t in stop['tau_stop']]}, "
          f"τ* {stop['tau_best']}")
    print(f"total {time.perf_counter() - t_all:.1f}s; wrote: " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
