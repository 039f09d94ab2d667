"""The authors' own RF-score trainer, ported faithfully, against rfdiff's exact route.

Source read (not copied; the procedure is ported): repository ``tbonnair/Why-Diffusion-Models-Don-t-Memorize``,
file ``Theory/src/Training_random_features.py`` (commit 6486102, the only version with the
``.py`` name; the same file as ``Theory/src/Training_random_features`` at 6a0c030). Its ``Theory/README.md``
says this script "computes the train and test losses as well as the L2 error to the true score which are
plotted in Fig.5". What it does:

* model ``S_A(x) = A tanh(W x/√d)``, ``A ∈ R^{d×p}`` initialised at zero, ``W ∈ R^{p×d}`` and the
  training set ``x ∈ R^{n×d}`` i.i.d. N(0, 1) (``torch.randn``): NO 1/√p factor, so their A equals
  rfdiff's ``B = A_rfdiff/√p`` (the scaling factor between the two conventions is 1 on B, √p on A);
* dtype: PyTorch defaults, float32 throughout (numpy float64 scalars multiplying float32 tensors do not
  promote them);
* one step (their "epoch"): ``eta = torch.randn(n, d)`` (ONE fresh noise draw per training point), the
  full-batch objective ``Σ_ν ‖√Δ_t S_A(e^{-t} x_ν + √Δ_t η_ν) + η_ν‖² / (d n)`` (the same 1/d
  normalisation as rfdiff), ``backward()``, ``optim.SGD([A], lr)`` with
  ``lr = 1e-2 · d / Δ_t`` (comment: "because the gradient is very small at initialization");
  ``num_epochs = 5·10⁶`` by default. (The first version, commit 419195e, had lr = 1e-4·d/Δ_t and a
  ridge term Δ_t·1e-3·‖A‖²/d; the current one has neither. We port the current one. As published, the
  current one calls ``torch.manual_seed(args.seed)`` but its parser defines no ``--seed``, so it stops
  with an AttributeError before training; the seed plays no part in the timing.)
* logging: at the epochs ``sorted({int(v) for v in exp(linspace(0, log T, 400))})`` with T = num_epochs,
  tested by ``epoch in sample_times``: 340 distinct values, of which 339 are < 5·10⁶ and thus reached.
  Each logging event computes, under ``no_grad``:
  - train loss: m = 100 fresh noise draws of the whole training set (100·n forward passes), mean of the
    per-draw losses (each ``.item()``'d);
  - test loss: N = 100·n fresh points x ~ N(0, I_d) with fresh noise, in batches of 100 (each ``.item()``'d);
  - error on the score: N = 10⁴ points x ~ N(0, I_d) (= P_t for this data), ``Σ‖S_A(x) + x‖²/(d N)``
    in batches of 100;
  then np.save's the four lists (negligible).

What this benchmark does (one run):

1. Ports their step to JAX as the fastest honest tool available here (no PyTorch in this environment):
   one ``jax.jit``-compiled step (fresh float32 normal noise drawn inside, ``value_and_grad`` of their
   objective, the SGD update, A's buffer donated), ``block_until_ready`` after every timed step, median
   over ``--steps`` warm steps after a warm-up. Their logging event is ported as one jitted function that
   computes the same three Monte Carlo estimates with the same numbers of points (batched more coarsely
   than their batches of 100, which only makes it faster). Extrapolates their full run:
   ``num_epochs × step + (logging events) × event``.
2. Times rfdiff's exact route end to end as a user runs it, in a cold subprocess
   (``python experiments/rf_timescales.py --d D --p P --n N --t T --no-progress --out <tmpdir>``;
   ``--main-cmd`` overrides the command line, ``{out}`` in it is replaced by the temporary folder).
   Note: that command computes gradient flow on a τ grid up to its default τ_max = 1e7 plus the
   theory; their run is discrete fresh-noise GD (η_rfdiff = p·lr; 0.38 of the stability limit at the
   cross-check point) reaching τ = 5e6·p·lr/d² ≈ 1.8e7.
   The exact route's cost does not depend on τ_max or on η.
3. Reports the ratio (their extrapolated full run) / (rfdiff end to end), and a correctness
   cross-check at a small point: ``--check-steps`` ported steps from A = 0, then the exact losses at
   that iterate from rfdiff's noise-averaged matrices (``train_matrices``/``population_matrices`` +
   ``quadratic_loss``/``score_error`` with B = A_theirs) against their own Monte Carlo estimates
   (their m = 100 draws, and the same estimator with ``--check-mc`` draws for a tighter comparison),
   with the Monte Carlo standard errors.
4. Writes ``results/bench_authors.json`` (``--out``; ``results/bench_authors_quick.json`` with
   ``--quick``) and prints a table.

``--quick`` uses d = 32, p = 2048, n = 256 for both sides (Fig. 5 point: d = 100, p = 6400, n = 800).
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import resource
import shlex
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

from rfdiff import io  # noqa: E402
from rfdiff_cli.common import run_metadata  # noqa: E402
from rfdiff.data import isotropic  # noqa: E402
from rfdiff.diffusion import delta  # noqa: E402
from rfdiff.matrices import population_matrices, train_matrices  # noqa: E402
from rfdiff.metrics import quadratic_loss, score_error  # noqa: E402
from rfdiff.training import gd_stability_limit  # noqa: E402

SOURCE = {"repository": "tbonnair/Why-Diffusion-Models-Don-t-Memorize",
          "path": "Theory/src/Training_random_features.py", "commit": "6486102ddf73dfdd403c11d9d9b97f74b522ee50"}
NUM_EPOCHS = 5_000_000      # their default --num_epochs
LR_FACTOR = 1e-2            # their lr = 1e-2 * d / Δ_t
TRAIN_DRAWS = 100           # their compute_train_loss(m=100)
TEST_PER_POINT = 100        # their compute_test_loss: N = 100 n
SCORE_POINTS = 10_000       # their compute_error_score: N = 10_000
DTYPE = jnp.float32         # PyTorch default dtype


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d", type=int, default=100, help="data dimension (default 100, Fig. 5)")
    ap.add_argument("--p", type=int, default=6400, help="random features (default 6400, ψ_p = 64)")
    ap.add_argument("--n", type=int, default=800, help="training points (default 800, ψ_n = 8)")
    ap.add_argument("--t", type=float, default=0.1, help="diffusion time (default 0.1)")
    ap.add_argument("--quick", action="store_true", help="smaller point for both sides: d=32, p=2048, n=256")
    ap.add_argument("--steps", type=int, default=30, help="warm steps timed, each blocked (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps after compilation (default 3)")
    ap.add_argument("--log-repeats", type=int, default=2, help="warm logging events timed (default 2)")
    ap.add_argument("--num-epochs", type=int, default=NUM_EPOCHS, help="their run length (default 5e6)")
    ap.add_argument("--check-steps", type=int, default=200, help="ported steps of the cross-check (default 200)")
    ap.add_argument("--check-d", type=int, default=16)
    ap.add_argument("--check-p", type=int, default=1024)
    ap.add_argument("--check-n", type=int, default=128)
    ap.add_argument("--check-mc", type=int, default=10000,
                    help="noise draws of the tighter train-loss estimate in the cross-check (default 10000)")
    ap.add_argument("--main-cmd", default=None,
                    help="command line of rfdiff's side (default: experiments/rf_timescales.py at the point); "
                         "'{out}' is replaced by a temporary output folder")
    ap.add_argument("--skip-main", action="store_true", help="do not run rfdiff's side (no ratio)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None,
                    help="output JSON (default results/bench_authors.json; bench_authors_quick.json with --quick)")
    args = ap.parse_args(argv)
    if args.quick:
        args.d, args.p, args.n = 32, 2048, 256
    if args.out is None:
        args.out = ROOT / "results" / f"bench_authors{'_quick' if args.quick else ''}.json"
    for name in ("d", "p", "n", "steps", "log_repeats", "num_epochs", "check_steps", "check_d", "check_p",
                 "check_n", "check_mc"):
        if getattr(args, name) <= 0:
            ap.error(f"--{name.replace('_', '-')} must be positive")
    if args.warmup < 0:
        ap.error("--warmup must be >= 0")
    return args


# --------------------------------------------------------------------------- their procedure, ported
def their_lr(d: int, t: float) -> float:
    return LR_FACTOR * d / delta(t)


def their_log_times(num_epochs: int) -> list[int]:
    """Their sample_logarithmically(400, T): distinct ints of exp(linspace(log 1, log T, 400))."""
    return sorted({int(v) for v in np.exp(np.linspace(np.log(1), np.log(num_epochs), 400))})


def _score(A, W, x):
    """S_A(x) = A tanh(W x/√d), batch x (N, d) -> (N, d); no 1/√p."""
    return jnp.tanh(x @ W.T / math.sqrt(W.shape[1])) @ A.T


def make_step(W, X, t: float, lr: float):
    """Their epoch: fresh η (n, d), full-batch objective Σ‖√Δ S_A(a x + √Δ η) + η‖²/(d n), SGD update."""
    n, d = X.shape
    a_t, sdt = math.exp(-t), math.sqrt(delta(t))

    def objective(A, W, X, eta):
        r = sdt * _score(A, W, a_t * X + sdt * eta) + eta
        return jnp.sum(r * r) / (d * n)

    @functools.partial(jax.jit, donate_argnums=0)
    def step(A, W, X, key, k):
        eta = jax.random.normal(jax.random.fold_in(key, k), (n, d), DTYPE)
        loss, g = jax.value_and_grad(objective)(A, W, X, eta)
        return A - lr * g, loss

    # W, X passed as arguments (not baked into the compiled program as constants)
    return lambda A, key, k: step(A, W, X, key, k)


def _chunk(total: int, target: int) -> int:
    """Largest divisor of total that is <= target (batches of equal size covering every point)."""
    for b in range(min(total, target), 0, -1):
        if total % b == 0:
            return b
    return 1


def make_log_event(W, X, t: float, train_draws: int = TRAIN_DRAWS, batch_target: int = 1000):
    """Their logging event: train loss (train_draws noise draws of the training set), test loss (100 n
    fresh points x ~ N(0, I) with fresh noise) and error on the score (10⁴ points, Σ‖S_A(x)+x‖²/(dN)).
    Returns (jitted event, batch info); the event gives (train, per-draw train losses, test,
    per-batch test sums, score error, per-batch score sums)."""
    n, d = X.shape
    a_t, sdt = math.exp(-t), math.sqrt(delta(t))
    n_test = TEST_PER_POINT * n
    b_test = _chunk(n_test, batch_target)
    b_score = _chunk(SCORE_POINTS, batch_target)

    @jax.jit
    def event(A, W, X, key):
        k1, k2, k3 = jax.random.split(key, 3)

        def train_draw(k):
            eta = jax.random.normal(k, (n, d), DTYPE)
            r = sdt * _score(A, W, a_t * X + sdt * eta) + eta
            return jnp.sum(r * r) / (d * n)

        per_draw = jax.lax.map(train_draw, jax.random.split(k1, train_draws))

        def test_batch(k):
            kx, ke = jax.random.split(k)
            x = jax.random.normal(kx, (b_test, d), DTYPE)
            eta = jax.random.normal(ke, (b_test, d), DTYPE)
            r = sdt * _score(A, W, a_t * x + sdt * eta) + eta
            return jnp.sum(r * r) / (d * n_test)

        def score_batch(k):
            x = jax.random.normal(k, (b_score, d), DTYPE)
            r = _score(A, W, x) + x
            return jnp.sum(r * r) / (d * SCORE_POINTS)

        test_parts = jax.lax.map(test_batch, jax.random.split(k2, n_test // b_test))
        score_parts = jax.lax.map(score_batch, jax.random.split(k3, SCORE_POINTS // b_score))
        return jnp.mean(per_draw), per_draw, jnp.sum(test_parts), test_parts, jnp.sum(score_parts), score_parts

    info = {"test_points": n_test, "test_batch": b_test, "score_points": SCORE_POINTS,
            "score_batch": b_score, "train_draws": train_draws}
    return (lambda A, key: event(A, W, X, key)), info


def draw_problem(key, p: int, d: int, n: int):
    """W (p, d) and x (n, d) i.i.d. N(0, 1) in float32, A = 0 (d, p), as their torch.randn / torch.zeros."""
    kw, kx = jax.random.split(key)
    return (jax.random.normal(kw, (p, d), DTYPE), jax.random.normal(kx, (n, d), DTYPE),
            jnp.zeros((d, p), DTYPE))


# --------------------------------------------------------------------------- 1. their step and event
def time_authors(args):
    d, p, n, t = args.d, args.p, args.n, args.t
    lr = their_lr(d, t)
    W, X, A = draw_problem(jax.random.PRNGKey(args.seed), p, d, n)
    step = make_step(W, X, t, lr)
    key = jax.random.PRNGKey(args.seed + 1)

    t0 = time.perf_counter()
    A, loss = step(A, key, 0)
    A.block_until_ready()
    compile_step = time.perf_counter() - t0
    k = 1
    for _ in range(args.warmup):
        A, loss = step(A, key, k)
        k += 1
    A.block_until_ready()
    per_step = []
    c0 = time.process_time()
    for _ in range(args.steps):
        t0 = time.perf_counter()
        A, loss = step(A, key, k)
        A.block_until_ready()
        per_step.append(time.perf_counter() - t0)
        k += 1
    cpu_step = (time.process_time() - c0) / args.steps
    # the same steps back to back (dispatch pipelined, one block at the end), for reference
    t0 = time.perf_counter()
    for _ in range(args.steps):
        A, loss = step(A, key, k)
        k += 1
    A.block_until_ready()
    loop_per_step = (time.perf_counter() - t0) / args.steps
    last_loss = float(loss)

    # their per-step Python check `epoch in sample_times` (a list), for completeness
    times = their_log_times(args.num_epochs)
    reps = 20000
    t0 = time.perf_counter()
    for e in range(10**6, 10**6 + reps):
        _ = e in times
    membership = (time.perf_counter() - t0) / reps

    event, event_info = make_log_event(W, X, t)
    ekey = jax.random.PRNGKey(args.seed + 2)
    t0 = time.perf_counter()
    jax.block_until_ready(event(A, ekey))
    event_cold = time.perf_counter() - t0
    per_event = []
    c0 = time.process_time()
    for r in range(args.log_repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(event(A, jax.random.fold_in(ekey, r + 1)))
        per_event.append(time.perf_counter() - t0)
    cpu_event = (time.process_time() - c0) / args.log_repeats
    n_events = sum(1 for e in times if e < args.num_epochs)

    med_step = statistics.median(per_step)
    med_event = statistics.median(per_event)
    total = args.num_epochs * (med_step + membership) + n_events * med_event
    return {
        "lr": lr, "lr_formula": "1e-2 * d / Delta_t", "dtype": "float32",
        "tau_per_step_rfdiff_units": p * lr / d**2,
        "tau_reached_full_run": args.num_epochs * p * lr / d**2,
        "step_compile_seconds": compile_step, "seconds_per_step_blocked": per_step,
        "median_seconds_per_step": med_step, "seconds_per_step_pipelined_loop": loop_per_step,
        "cpu_seconds_per_step": cpu_step,
        "seconds_per_membership_check": membership,
        "batch_loss_after_timed_steps": last_loss, "steps_done": k,
        "logging_event": {"cold_seconds": event_cold, "seconds": per_event, "median_seconds": med_event,
                          "cpu_seconds": cpu_event,
                          **event_info, "train_loss": float(out[0]), "test_loss": float(out[2]),
                          "score_error": float(out[4])},
        "num_epochs": args.num_epochs, "logging_times_distinct": len(times), "logging_events": n_events,
        "extrapolated_seconds_steps": args.num_epochs * med_step,
        "extrapolated_seconds_membership_checks": args.num_epochs * membership,
        "extrapolated_seconds_logging": n_events * med_event,
        "extrapolated_seconds_total": total,
        "extrapolated_cpu_seconds_total": args.num_epochs * (cpu_step + membership) + n_events * cpu_event,
    }


def time_authors_eager(args, W, X):
    """Their step executed eagerly in float32 numpy (one op at a time, as PyTorch's eager mode runs their
    script): fresh noise, forward, the same gradient as autograd, the SGD update. Median of blocked steps."""
    d, p, n, t = args.d, args.p, args.n, args.t
    lr = their_lr(d, t)
    rng = np.random.default_rng(args.seed)
    W32, X32 = np.asarray(W, np.float32), np.asarray(X, np.float32)
    A = np.zeros((d, p), np.float32)
    et, sd = np.float32(math.exp(-t)), np.float32(math.sqrt(-math.expm1(-2 * t)))
    inv = np.float32(1.0 / math.sqrt(d))

    def step(A):
        xi = rng.standard_normal((n, d), dtype=np.float32)
        phi = np.tanh(((et * X32 + sd * xi) @ W32.T) * inv)
        r = sd * (phi @ A.T) + xi
        grad = (np.float32(2.0 / (d * n)) * sd) * (r.T @ phi)
        return A - np.float32(lr) * grad

    for _ in range(args.warmup):
        A = step(A)
    per = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        A = step(A)
        per.append(time.perf_counter() - t0)
    return {"median_seconds_per_step": statistics.median(per), "seconds_per_step": per,
            "how": "numpy float32, eager (one op at a time, as PyTorch runs the published script)"}


# --------------------------------------------------------------------------- 2. rfdiff end to end
def time_rfdiff(args):
    with tempfile.TemporaryDirectory(prefix="bench_authors_") as tmp:
        if args.main_cmd:
            cmd = [c.replace("{out}", tmp) for c in shlex.split(args.main_cmd)]
        else:
            cmd = [sys.executable, str(ROOT / "experiments" / "rf_timescales.py"), "--d", str(args.d),
                   "--p", str(args.p), "--n", str(args.n), "--t", repr(args.t), "--no-progress", "--out", tmp]
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        res = {"command": cmd, "returncode": proc.returncode, "wall_seconds": wall, "cpu_seconds": cpu,
               "stdout_tail": proc.stdout[-3000:], "stderr_tail": proc.stderr[-3000:]}
        jsons = sorted(Path(tmp).glob("*.json"))
        if jsons:
            import json
            try:
                r = json.loads(jsons[0].read_text()).get("result", {})  # rfdiff.results.save's tree
                res["internal_timings_s"] = r.get("timings")
                ts = ((r.get("simulation") or {}).get("timescales")) or {}
                res["timescales"] = {k: v for k, v in ts.items() if isinstance(v, (int, float))} or None
            except (OSError, ValueError) as err:
                res["json_error"] = str(err)
    return res


# --------------------------------------------------------------------------- 3. cross-check
def cross_check(args):
    d, p, n, t = args.check_d, args.check_p, args.check_n, args.t
    lr = their_lr(d, t)
    W, X, A = draw_problem(jax.random.PRNGKey(args.seed + 10), p, d, n)
    step = make_step(W, X, t, lr)
    key = jax.random.PRNGKey(args.seed + 11)
    for k in range(args.check_steps):
        A, _ = step(A, key, k)
    A.block_until_ready()
    ekey = jax.random.PRNGKey(args.seed + 12)
    tr, per_draw, te, test_parts, err, score_parts = jax.block_until_ready(make_log_event(W, X, t)[0](A, ekey))
    per_draw = np.asarray(per_draw, np.float64)
    tr_big, per_draw_big, *_ = jax.block_until_ready(
        make_log_event(W, X, t, train_draws=args.check_mc)[0](A, jax.random.fold_in(ekey, 1)))
    per_draw_big = np.asarray(per_draw_big, np.float64)

    B = np.asarray(A, np.float64)            # their A is rfdiff's B = A_rfdiff/√p (scaling 1)
    W64, X64 = np.asarray(W, np.float64), np.asarray(X, np.float64)
    with warnings.catch_warnings():  # truncation errors are recorded below (Ũ stops at ~2e-7 at max_order)
        warnings.simplefilter("ignore", RuntimeWarning)
        tm = train_matrices(W64, X64, t, tol=1e-8)
        pm = population_matrices(W64, isotropic(d), t, tol=1e-8)
    exact_train = float(quadratic_loss(B, tm.U, tm.V, t))
    exact_test = float(quadratic_loss(B, pm.U, pm.V, t))
    exact_score = float(score_error(B, pm.U, pm.V, t, float(d)))  # J = E‖∇log P_t‖² = d for P_t = N(0, I)
    eta_max_rf = gd_stability_limit(tm.U, d, t)  # rfdiff's convention: η_rfdiff = p · lr_theirs
    se = per_draw.std(ddof=1) / math.sqrt(per_draw.size)
    se_big = per_draw_big.std(ddof=1) / math.sqrt(per_draw_big.size)
    # test-loss s.e. from the per-batch sums (each batch an i.i.d. estimate of the loss / n_batches)
    tp = np.asarray(test_parts, np.float64) * test_parts.shape[0]
    se_test = tp.std(ddof=1) / math.sqrt(tp.size)
    sp = np.asarray(score_parts, np.float64) * score_parts.shape[0]
    se_score = sp.std(ddof=1) / math.sqrt(sp.size)
    return {
        "point": {"d": d, "p": p, "n": n, "t": t}, "steps": args.check_steps, "lr": lr,
        "tau_reached_rfdiff_units": args.check_steps * p * lr / d**2,
        "lr_over_stability_limit": p * lr / eta_max_rf,
        "train_loss_exact": exact_train,
        "train_loss_mc_theirs_m100": float(tr), "train_loss_mc_theirs_m100_se": se,
        "train_loss_mc_theirs_m100_rel_diff": float(tr) / exact_train - 1,
        "train_loss_mc_theirs_m100_z": (float(tr) - exact_train) / se,
        f"train_loss_mc_m{args.check_mc}": float(tr_big), f"train_loss_mc_m{args.check_mc}_se": se_big,
        f"train_loss_mc_m{args.check_mc}_rel_diff": float(tr_big) / exact_train - 1,
        f"train_loss_mc_m{args.check_mc}_z": (float(tr_big) - exact_train) / se_big,
        "test_loss_exact": exact_test, "test_loss_mc_theirs": float(te), "test_loss_mc_theirs_se": se_test,
        "test_loss_mc_theirs_rel_diff": float(te) / exact_test - 1,
        "test_loss_mc_theirs_z": (float(te) - exact_test) / se_test,
        "score_error_exact": exact_score, "score_error_mc_theirs": float(err),
        "score_error_mc_theirs_se": se_score,
        "score_error_mc_theirs_rel_diff": float(err) / exact_score - 1,
        "score_error_mc_theirs_z": (float(err) - exact_score) / se_score,
        "mehler_truncation_error": {"U": float(tm.trunc_error), "U_pop": float(pm.trunc_error)},
    }


def main(argv=None):
    args = parse_args(argv)
    load0 = os.getloadavg()
    print(f"source: {SOURCE['repository']}:{SOURCE['path']} @ {SOURCE['commit'][:7]}")

    print(f"(3) cross-check at d={args.check_d}, p={args.check_p}, n={args.check_n}, t={args.t}: "
          f"{args.check_steps} ported steps from A = 0 ...", flush=True)
    check = cross_check(args)
    print(f"    train loss exact {check['train_loss_exact']:.6f} | theirs (m=100) "
          f"{check['train_loss_mc_theirs_m100']:.6f} ± {check['train_loss_mc_theirs_m100_se']:.1e} "
          f"(rel {check['train_loss_mc_theirs_m100_rel_diff']:+.1e}, z {check['train_loss_mc_theirs_m100_z']:+.1f}) | m={args.check_mc} "
          f"{check[f'train_loss_mc_m{args.check_mc}']:.6f} ± {check[f'train_loss_mc_m{args.check_mc}_se']:.1e} "
          f"(rel {check[f'train_loss_mc_m{args.check_mc}_rel_diff']:+.1e}, z {check[f'train_loss_mc_m{args.check_mc}_z']:+.1f})")
    print(f"    test loss exact {check['test_loss_exact']:.6f} | theirs {check['test_loss_mc_theirs']:.6f} "
          f"± {check['test_loss_mc_theirs_se']:.1e} (z {check['test_loss_mc_theirs_z']:+.1f}); score error exact {check['score_error_exact']:.5f} | "
          f"theirs {check['score_error_mc_theirs']:.5f} ± {check['score_error_mc_theirs_se']:.1e}; lr = {check['lr_over_stability_limit']:.2f} of the "
          f"GD stability limit", flush=True)

    print(f"(1) their trainer, ported (JAX jit, float32) at d={args.d}, p={args.p}, n={args.n}, t={args.t} ...",
          flush=True)
    authors = time_authors(args)
    W, X, _ = draw_problem(jax.random.PRNGKey(args.seed), args.p, args.d, args.n)
    eager = time_authors_eager(args, W, X)
    eager_total = args.num_epochs * eager["median_seconds_per_step"] \
        + authors["logging_events"] * authors["logging_event"]["median_seconds"]
    eager["extrapolated_seconds_total"] = eager_total
    print(f"    eager float32 port: {1e3 * eager['median_seconds_per_step']:.2f} ms/step", flush=True)
    print(f"    {1e3 * authors['median_seconds_per_step']:.2f} ms/step (median of {args.steps} blocked; "
          f"{1e3 * authors['seconds_per_step_pipelined_loop']:.2f} pipelined), logging event "
          f"{authors['logging_event']['median_seconds']:.2f} s (cold {authors['logging_event']['cold_seconds']:.2f} s) "
          f"x {authors['logging_events']} events", flush=True)

    if args.skip_main:
        main_side = None
    else:
        print("(2) rfdiff end to end (cold subprocess) ...", flush=True)
        main_side = time_rfdiff(args)
        print(f"    {main_side['wall_seconds']:.1f} s wall, return code {main_side['returncode']}", flush=True)
        if main_side["returncode"] != 0:
            tail = main_side["stderr_tail"].strip().splitlines()[-1:] or ["(no stderr)"]
            print(f"    FAILED, no ratio: {tail[0]}", flush=True)
    ok = main_side is not None and main_side["returncode"] == 0
    ratio = authors["extrapolated_seconds_total"] / main_side["wall_seconds"] if ok else None
    ratio_eager = eager_total / main_side["wall_seconds"] if ok else None
    ratio_cpu = authors["extrapolated_cpu_seconds_total"] / main_side["cpu_seconds"] if ok else None

    out = {
        "benchmark": "bench_authors", "source": SOURCE,
        "point": {"d": args.d, "p": args.p, "n": args.n, "t": args.t, "psi_p": args.p / args.d,
                  "psi_n": args.n / args.d, "quick": args.quick},
        "dtype_authors": "float32", "dtype_rfdiff": "float64",
        "authors_ported": authors, "authors_ported_eager": eager, "rfdiff_end_to_end": main_side,
        "ratio_authors_full_run_over_rfdiff": ratio,
        "ratio_eager_port_full_run_over_rfdiff": ratio_eager,
        "ratio_cpu_seconds": ratio_cpu,
        "cross_check": check,
        "notes": ["authors' full run EXTRAPOLATED: num_epochs x median blocked step + events x median event "
                  "(+ their per-step list-membership check)",
                  "rfdiff side: gradient flow on its default tau grid (to 1e7) with theory; cost independent "
                  "of tau_max and eta"],
        "loadavg_start": load0, "loadavg_end": os.getloadavg(),
        "metadata": run_metadata(),
    }
    io.save_json(args.out, out)

    rows = [("point", f"d={args.d} p={args.p} n={args.n} t={args.t}"),
            ("their lr (1e-2 d/Δ_t), dtype", f"{authors['lr']:.4g}, float32"),
            ("their step (median, blocked)", f"{1e3 * authors['median_seconds_per_step']:.2f} ms"),
            ("their logging event (warm)", f"{authors['logging_event']['median_seconds']:.2f} s"),
            ("logging events in 5e6 steps", f"{authors['logging_events']}"),
            ("their full run, extrapolated", f"{authors['extrapolated_seconds_total']:.4g} s "
                                             f"({authors['extrapolated_seconds_total'] / 3600:.1f} h); CPU "
                                             f"{authors['extrapolated_cpu_seconds_total'] / 3600:.1f} h"),
            ("  of which steps / logging", f"{authors['extrapolated_seconds_steps']:.4g} s / "
                                           f"{authors['extrapolated_seconds_logging']:.4g} s"),
            ("rfdiff end to end (cold process)", f"{main_side['wall_seconds']:.1f} s wall, "
                                                 f"{main_side['cpu_seconds']:.1f} s CPU" if main_side else "skipped"),
            ("ratio, jitted port (wall; CPU s)", f"{ratio:.0f}x; {ratio_cpu:.0f}x" if ratio else "n/a"),
            ("their step, eager float32 port", f"{1e3 * eager['median_seconds_per_step']:.2f} ms"),
            ("ratio, eager port (wall)", f"{ratio_eager:.0f}x" if ratio_eager else "n/a"),
            ("check: train loss exact / theirs", f"{check['train_loss_exact']:.6f} / "
                                                  f"{check['train_loss_mc_theirs_m100']:.6f}"),
            ("check: test loss exact / theirs", f"{check['test_loss_exact']:.6f} / "
                                                 f"{check['test_loss_mc_theirs']:.6f}")]
    print()
    for k, v in rows:
        print(f"{k:<36}{v}")
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
