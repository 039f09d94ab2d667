"""Time to reach τ = 1e5: rfdiff's exact route vs step-by-step fresh-noise GD.

(i)   rfdiff exact route (docs/theory.md §3.2): ``build_problem`` (W, data, exact U, V, Ũ, Ṽ, J,
      empirical-score moments) + ``from_problem`` (one eigendecomposition) + ``curves`` on a log
      grid of τ up to τ_max. Timed end to end; the first repeat is the cold one.
(ii)  Naive baseline, as the original authors' scripts train: full-batch GD on the denoising loss
      with fresh noise at every step, one step per Python iteration (a jitted JAX step, PRNG split
      in Python), at the largest stable step η = 0.9 p d/(Δ_t λ_max(U)). A fixed number of steps is
      timed and the time is EXTRAPOLATED to the k = τ_max d²/η steps needed to reach τ_max. Run in
      float64 (as rfdiff) and float32 (the scripts' PyTorch default).
(iii) For reference, rfdiff's own iterative route (``rfdiff.training.train``, lax.scan; docs/theory.md
      §3.7) with fresh and with exact-average noise, timed and extrapolated the same way.

Headline: ratio = baseline (extrapolated) / exact route, both measured in the same run (also in
CPU seconds, less sensitive to other load on the machine).
Writes JSON (``--out``, default ``<repo>/results/bench_training.json``, ``bench_training_quick.json``
with ``--quick``; written atomically) with the timings, the ratios, η, the steps extrapolated,
machine info and versions. ``--quick`` runs a small size (under a minute).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from rfdiff.diffusion import delta  # noqa: E402
from rfdiff.dynamics import from_problem  # noqa: E402
from rfdiff.model import RFConfig, build_problem  # noqa: E402
from rfdiff.training import TrainConfig, gd_stability_limit, train  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p", type=int, default=4096, help="number of random features p (default 4096)")
    ap.add_argument("--n", type=int, default=512, help="number of training points n (default 512)")
    ap.add_argument("--d", type=int, default=64, help="data dimension d (default 64)")
    ap.add_argument("--t", type=float, default=0.1, help="diffusion time t (default 0.1)")
    ap.add_argument("--tau-max", type=float, default=1e5, help="training time to reach, τ = kη/d² (default 1e5)")
    ap.add_argument("--n-tau", type=int, default=200, help="points of the log τ grid of the exact route (default 200)")
    ap.add_argument("--eta-frac", type=float, default=0.9, help="η as a fraction of the GD stability limit (default 0.9)")
    ap.add_argument("--steps", type=int, default=100, help="baseline steps timed per repeat (default 100)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the step timings; medians reported (default 3)")
    ap.add_argument("--exact-repeats", type=int, default=2,
                    help="repeats of the exact route; the first is cold (JIT compilation), the median of the "
                         "others is the headline (default 2)")
    ap.add_argument("--seed", type=int, default=0, help="seed of W, data and noise (default 0)")
    ap.add_argument("--quick", action="store_true", help="small size (d=32, p=512, n=64), 2 repeats, 50 steps")
    ap.add_argument("--out", type=Path, default=None,
                    help="output JSON path (default results/bench_training.json, bench_training_quick.json with --quick)")
    args = ap.parse_args(argv)
    if args.quick:
        args.p, args.n, args.d, args.steps, args.repeats = 512, 64, 32, 50, 2
    if args.out is None:
        args.out = ROOT / "results" / f"bench_training{'_quick' if args.quick else ''}.json"
    for name in ("p", "n", "d", "n_tau", "steps", "repeats", "exact_repeats"):
        if getattr(args, name) <= 0:
            ap.error(f"--{name.replace('_', '-')} must be positive")
    if not 0 < args.eta_frac < 1:
        ap.error("--eta-frac must be in (0, 1)")
    return args


def exact_route(cfg: RFConfig, taus: np.ndarray):
    """build_problem + from_problem + curves; returns (stage times, problem, dynamics, curves)."""
    c0, t0 = time.process_time(), time.perf_counter()
    prob = build_problem(cfg)
    t1 = time.perf_counter()
    dyn = from_problem(prob)
    t2 = time.perf_counter()
    curves = dyn.curves(taus)
    t3, c3 = time.perf_counter(), time.process_time()
    return ({"build_problem": t1 - t0, "from_problem": t2 - t1, "curves": t3 - t2, "total": t3 - t0,
             "cpu_total": c3 - c0}, prob, dyn, curves)


def make_baseline_step(W, X, t: float, eta: float, dtype):
    """One fresh-noise full-batch GD step on (1/(n d)) Σ_ν ‖√Δ_t s_A(x_t^ν) + ξ^ν‖², jitted."""
    d, sdt, et = W.shape[1], math.sqrt(delta(t)), math.exp(-t)
    W = jnp.asarray(W, dtype)
    X = jnp.asarray(X, dtype)
    p = W.shape[0]

    def loss(A, xi):
        phi = jnp.tanh((et * X + sdt * xi) @ W.T / math.sqrt(d))
        r = sdt * phi @ A.T / math.sqrt(p) + xi
        return jnp.mean(jnp.sum(r * r, axis=1)) / d

    @jax.jit
    def step(A, key):
        xi = jax.random.normal(key, X.shape, dtype)
        val, g = jax.value_and_grad(loss)(A, xi)
        return A - eta * g, val

    return step


def time_baseline(W, X, t, eta, steps, repeats, dtype, seed):
    """Wall and CPU seconds per step of the Python loop per repeat (after a compiled warm-up), and the final A."""
    step = make_baseline_step(W, X, t, eta, dtype)
    A = jnp.zeros((W.shape[1], W.shape[0]), dtype)
    key = jax.random.PRNGKey(seed)
    for _ in range(3):  # compile + warm-up
        key, sub = jax.random.split(key)
        A, val = step(A, sub)
    A.block_until_ready()
    per_step, cpu_step, total_steps = [], [], 3
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(steps):
            key, sub = jax.random.split(key)
            A, val = step(A, sub)
        A.block_until_ready()
        per_step.append((time.perf_counter() - t0) / steps)
        cpu_step.append((time.process_time() - c0) / steps)
        total_steps += steps
    return per_step, cpu_step, np.asarray(A, dtype=np.float64), total_steps, float(val)


def time_rfdiff_iterative(prob, noise: str, eta, steps, repeats, seed):
    """Median seconds per step of rfdiff.training.train (lax.scan): the difference between runs of
    2k and k steps, divided by k, so the per-call cost (validation, one checkpoint's metrics) drops out.

    Also returns the distinct warnings ``train`` gave: with fresh noise it checks η against λ_max(U)
    estimated from one noise draw, which can lie just below the exact limit that η is a fraction of;
    the per-step cost does not depend on it, so the warning is recorded, not raised."""
    d, t = prob.config.d, prob.config.t
    kw = dict(U=prob.train.U, V=prob.train.V, W=prob.W, X=prob.X, activation=prob.config.activation)
    caught = []

    def run_train(k, r):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            res = train(jax.random.key(seed + r), TrainConfig(eta=eta, tau_max=k * eta / d**2, n_log=1, noise=noise),
                        t, **kw)
        caught.extend(str(x.message) for x in w)
        return res

    run_train(2, 0)  # compile

    def run(k, r):
        c0, t0 = time.process_time(), time.perf_counter()
        res = run_train(k, r)
        assert int(res["step"][-1]) == k
        return time.perf_counter() - t0, time.process_time() - c0

    per_step, cpu_step, overhead = [], [], []
    for r in range(repeats):
        (t1, c1), (t2, c2) = run(steps, r), run(2 * steps, r)
        per_step.append(max(t2 - t1, 0.0) / steps)
        cpu_step.append(max(c2 - c1, 0.0) / steps)
        overhead.append(t1 - steps * per_step[-1])
    return per_step, cpu_step, overhead, sorted(set(caught))


def versions() -> dict:
    import optax
    import scipy
    import jaxlib
    return {"python": platform.python_version(), "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "optax": optax.__version__, "numpy": np.__version__, "scipy": scipy.__version__}


def git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def write_json_atomic(path: Path, obj: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    cfg = RFConfig(d=args.d, p=args.p, n=args.n, t=args.t, seed=args.seed)
    taus = np.geomspace(1e-1, args.tau_max, args.n_tau)

    print(f"(i) exact route: p={args.p}, n={args.n}, d={args.d}, t={args.t}, tau up to {args.tau_max:g}")
    load_start = os.getloadavg()
    exact_runs = []
    for r in range(args.exact_repeats):
        stages, prob, dyn, curves = exact_route(cfg, taus)
        exact_runs.append(stages)
        print(f"    repeat {r}: {stages['total']:.2f} s  (build {stages['build_problem']:.2f}, "
              f"eigh {stages['from_problem']:.2f}, curves {stages['curves']:.2f})")
    totals = [s["total"] for s in exact_runs]
    warm_totals = totals[1:] or totals
    t_exact = statistics.median(warm_totals)
    cpu_exact = statistics.median([s["cpu_total"] for s in (exact_runs[1:] or exact_runs)])

    lam_max = float(dyn.lam[-1])
    eta_max = gd_stability_limit(prob.train.U, args.d, args.t)
    eta = args.eta_frac * eta_max
    k_needed = math.ceil(args.tau_max * args.d**2 / eta)
    print(f"(ii) baseline: fresh-noise GD, one jitted step per Python iteration, eta = {args.eta_frac} x "
          f"{eta_max:.6g} = {eta:.6g}; {k_needed} steps needed for tau = {args.tau_max:g}")
    W, X = np.asarray(prob.W), np.asarray(prob.X)
    baseline = {}
    for name, dtype in (("float64", jnp.float64), ("float32", jnp.float32)):
        with jax.enable_x64(True):
            per_step, cpu_step, A, done, last_batch_loss = time_baseline(W, X, args.t, eta, args.steps, args.repeats,
                                                               dtype, args.seed)
        med = statistics.median(per_step)
        # sanity: the baseline does the same training: noise-averaged L_train vs the exact GD curve
        tau_done = done * eta / args.d**2
        with jax.enable_x64(True):
            B = A / math.sqrt(args.p)
            U, V = np.asarray(prob.train.U), np.asarray(prob.train.V)
            dt = delta(args.t)
            l_base = 1 + dt / args.d * np.sum((B @ U) * B) + 2 * math.sqrt(dt) / args.d * np.sum(B * V.T)
            l_exact = float(dyn.curves([tau_done], eta=eta)["train_loss"][0])
        baseline[name] = {
            "seconds_per_step": per_step, "median_seconds_per_step": med,
            "cpu_seconds_per_step": cpu_step,
            "extrapolated_cpu_seconds_to_tau_max": statistics.median(cpu_step) * k_needed,
            "steps_timed_per_repeat": args.steps, "steps_needed": k_needed,
            "extrapolated_seconds_to_tau_max": med * k_needed,
            "check": {"tau_reached": tau_done, "train_loss_noise_averaged": float(l_base),
                      "train_loss_exact_gd_curve": l_exact, "last_batch_loss": last_batch_loss},
        }
        print(f"    {name}: {1e3 * med:.2f} ms/step -> extrapolated {med * k_needed:.1f} s "
              f"(one run: noise-averaged L_train {l_base:.5f}, exact GD curve {l_exact:.5f} at tau = {tau_done:.4g}; the excess is SGD noise)")

    k_iter = {"fresh": max(5, args.steps // 4), "exact": max(5, args.steps // 10)}
    if args.quick:  # small steps are cheap: time more of them, or the k / 2k difference drowns in timer noise
        k_iter = {"fresh": args.steps, "exact": args.steps}
    print("(iii) rfdiff iterative route (lax.scan), same eta: per step from runs of k and 2k steps, extrapolated")
    iterative = {}
    for noise in ("fresh", "exact"):
        with jax.enable_x64(True):
            per_step, cpu_step, overhead, train_warnings = time_rfdiff_iterative(prob, noise, eta, k_iter[noise],
                                                                                 args.repeats, args.seed)
        med = statistics.median(per_step)
        iterative[noise] = {"seconds_per_step": per_step, "median_seconds_per_step": med,
                            "cpu_seconds_per_step": cpu_step,
                            "extrapolated_cpu_seconds_to_tau_max": statistics.median(cpu_step) * k_needed,
                            "per_call_overhead_seconds": overhead, "steps_timed": [k_iter[noise], 2 * k_iter[noise]],
                            "steps_needed": k_needed, "extrapolated_seconds_to_tau_max": med * k_needed,
                            "train_warnings": train_warnings}
        print(f"    noise={noise}: {1e3 * med:.2f} ms/step (k = {k_iter[noise]}) -> extrapolated {med * k_needed:.1f} s"
              + "".join(f"\n      (train warned: {m})" for m in train_warnings))

    t_base = baseline["float64"]["extrapolated_seconds_to_tau_max"]
    ratio = t_base / t_exact
    ratio32 = baseline["float32"]["extrapolated_seconds_to_tau_max"] / t_exact
    print(f"exact route {t_exact:.2f} s (median of warm repeats; cold {totals[0]:.2f} s) vs baseline "
          f"{t_base:.1f} s (float64, EXTRAPOLATED from {args.steps} timed steps to {k_needed}): "
          f"ratio {ratio:.1f}x (float32 baseline: {ratio32:.1f}x; vs cold exact: {t_base / totals[0]:.1f}x)")
    cpu_base = baseline["float64"]["extrapolated_cpu_seconds_to_tau_max"]
    ratio_cpu = cpu_base / cpu_exact
    print(f"CPU time (less sensitive to other load on the machine): exact {cpu_exact:.1f} s vs baseline "
          f"{cpu_base:.1f} s (float64) / {baseline['float32']['extrapolated_cpu_seconds_to_tau_max']:.1f} s "
          f"(float32): ratio {ratio_cpu:.1f}x; load average {load_start[0]:.1f} at start, {os.getloadavg()[0]:.1f} now")

    out = {
        "benchmark": "bench_training",
        "config": {**cfg.to_dict(), "tau_max": args.tau_max, "n_tau": args.n_tau, "quick": args.quick,
                   "repeats": args.repeats, "exact_repeats": args.exact_repeats, "steps": args.steps,
                   "eta_frac": args.eta_frac},
        "exact_route": {"runs": exact_runs, "cold_seconds": totals[0], "median_warm_seconds": t_exact,
                        "median_warm_cpu_seconds": cpu_exact,
                        "final_train_loss": float(curves["train_loss"][-1]),
                        "final_test_loss": float(curves["test_loss"][-1])},
        "lambda_max_U": lam_max, "eta_max": eta_max, "eta": eta,
        "baseline_fresh_gd_python_loop": baseline,
        "note": "baseline times are extrapolated: seconds per step (median over repeats of "
                f"{args.steps} steps) x steps needed = tau_max d^2 / eta",
        "rfdiff_iterative_scan": iterative,
        "ratio_baseline_over_exact": ratio,
        "ratio_baseline_float32_over_exact": ratio32,
        "ratio_baseline_over_exact_cold": t_base / totals[0],
        "ratio_baseline_over_exact_cpu_seconds": ratio_cpu,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "machine": platform.machine(), "cpu_count": os.cpu_count(),
                    "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                    "jax_backend": jax.default_backend(),
                    "loadavg_1_5_15min_start": load_start, "loadavg_1_5_15min_end": os.getloadavg()},
        "versions": versions(),
        "jax_enable_x64_global": bool(jax.config.jax_enable_x64),
        "float64_note": "rfdiff computes in float64 locally (rfdiff._util.x64); baselines in float64 and float32",
        "git_commit": git_commit(),
    }
    write_json_atomic(args.out, out)
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
