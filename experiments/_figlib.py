"""Computation and caching layer of ``experiments/figures.py`` (issue 4).

Every expensive unit — one exact simulation (U, Ũ, eigendecomposition, curves), one spectrum
of U, one theory prediction, one Adam run — is a pure function of a small JSON-able parameter
dict. :class:`Cache` stores its result as ``<kind>_<hash>.npz`` (arrays) plus
``<kind>_<hash>.json`` (scalars, parameters, run time, metadata), keyed by a SHA-1 of the
parameters and :data:`CACHE_VERSION`; a rerun only recomputes units whose parameters changed,
and an interrupted run resumes from the units already written (writes are atomic).
Figures share units: e.g. the learning-curve problems are reused by the min-score-error fit.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np

CACHE_VERSION = 1
TAUS = dict(tau_min=1e-2, tau_max=1e8, n_tau=161)   # τ grid of every simulated curve
ATOMS_2 = ((0.5, 0.5), (1.5, 0.5))                    # ρ_Σ = ½δ_0.5 + ½δ_1.5


def tau_grid(tau_min=TAUS["tau_min"], tau_max=TAUS["tau_max"], n_tau=TAUS["n_tau"]) -> np.ndarray:
    return np.logspace(math.log10(tau_min), math.log10(tau_max), n_tau)


def param_hash(kind: str, params: dict) -> str:
    text = json.dumps({"kind": kind, "v": CACHE_VERSION, "params": params}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class Cache:
    """Content-addressed store of computed units (JSON scalars + NPZ arrays)."""

    def __init__(self, root):
        self.root = Path(root)
        self.computed = 0   # units computed (not loaded) by this instance
        self.loaded = 0

    def paths(self, kind: str, params: dict):
        h = param_hash(kind, params)
        return self.root / f"{kind}_{h}.json", self.root / f"{kind}_{h}.npz"

    def get(self, kind: str, params: dict, fn: Callable[[dict], tuple[dict, dict]]) -> dict:
        """Result of ``fn(params) -> (scalars, arrays)``, from the cache if present."""
        from rfdiff import io
        pj, pz = self.paths(kind, params)
        if pj.exists() and pz.exists():
            try:
                scal = json.loads(pj.read_text())
                with np.load(pz) as z:
                    arr = {k: z[k] for k in z.files}
                self.loaded += 1
                return {**scal["result"], **arr, "_runtime_s": scal["runtime_s"], "_cached": True}
            except (OSError, ValueError, KeyError):
                pass  # corrupt entry: recompute
        t0 = time.perf_counter()
        scal, arr = fn(dict(params))
        dt = time.perf_counter() - t0
        io.save_npz(pz, arr)
        io.save_json(pj, {"kind": kind, "params": params, "result": scal, "runtime_s": dt,
                          "cache_version": CACHE_VERSION})
        self.computed += 1
        return {**io.to_jsonable(scal), **{k: np.asarray(v) for k, v in arr.items()}, "_runtime_s": dt,
                "_cached": False}


# ------------------------------------------------------------------------------------------------
# computation units (params → (scalars, arrays))


def _data_spec(params):
    from rfdiff.model import DataSpec
    kind = params.get("data", "isotropic")
    if kind == "spectrum":
        return DataSpec(kind="spectrum", atoms=tuple(tuple(a) for a in params.get("atoms", ATOMS_2)))
    return DataSpec(kind=kind, sigma_x=params.get("sigma_x", 1.0))


def _config(params):
    from rfdiff.model import RFConfig
    return RFConfig(d=params["d"], p=params["p"], n=params["n"], t=params["t"],
                    activation=params.get("activation", "tanh"), data=_data_spec(params), seed=params["seed"],
                    tol=params.get("tol", 1e-8), n_emp=params.get("n_emp", 2048))


def sim_curves(params: dict):
    """Exact GD-flow curves of one problem (SPEC §3) + its timescales and spectrum of U."""
    from rfdiff import dynamics, model, timescales
    cfg = _config(params)
    prob = model.build_problem(cfg)
    dyn = dynamics.from_problem(prob)
    taus = tau_grid(*params.get("taus", (TAUS["tau_min"], TAUS["tau_max"], TAUS["n_tau"])))
    c = dyn.curves(taus)
    tg = timescales.tau_gen(taus, c["score_error"], params.get("gen_frac", 0.1))
    tm = timescales.tau_mem(taus, c["gen_gap"], params.get("mem_frac", 0.5), params.get("mem_abs", 0.05))
    lam = np.asarray(dyn.lam)
    scal = {"tau_gen": tg["tau_gen"], "tau_at_min": tg["tau_at_min"], "min_score_error": tg["min"],
            "tau_mem": tm["tau_mem"], "tau_mem_abs": tm["tau_mem_abs"], "final_gap": tm["final_gap"],
            "lambda_min": float(lam[lam > 0].min()), "lambda_max": float(lam.max()),
            "n_negative": dyn.n_negative, "train_order": prob.train.order,
            "train_trunc_error": prob.train.trunc_error, "psi_p": cfg.psi_p, "psi_n": cfg.psi_n}
    arr = {k: np.asarray(v) for k, v in c.items()}
    arr["eigenvalues"] = lam
    return scal, arr


def sim_spectrum(params: dict):
    """Eigenvalues of the exact noise-averaged U only (no population matrices), SPEC §2."""
    import jax
    import scipy.linalg

    from rfdiff.features import init_W
    from rfdiff.matrices import train_matrices
    import jax.numpy as jnp
    cfg = _config(params)
    key = jax.random.PRNGKey(cfg.seed)
    k_data, k_w, k_x, _, _ = jax.random.split(key, 5)   # same draws as rfdiff.model.build_problem
    data = cfg.data.build(cfg.d, k_data)
    with jax.enable_x64(True):
        W = init_W(k_w, cfg.p, cfg.d, dtype=jnp.float64)
        X = jnp.asarray(data.sample(k_x, cfg.n), dtype=jnp.float64)
        tm = train_matrices(W, X, cfg.t, cfg.activation, tol=cfg.tol)
    lam = scipy.linalg.eigvalsh(np.asarray(tm.U, dtype=np.float64), check_finite=False)
    return {"order": tm.order, "trunc_error": tm.trunc_error, "psi_p": cfg.psi_p, "psi_n": cfg.psi_n}, \
        {"eigenvalues": lam}


def theory_predict(params: dict):
    """:func:`rfdiff.theory.predict` (timescales, edges; curves if ``taus`` given)."""
    from rfdiff.theory import predict
    atoms = params.get("atoms")
    kw = dict(activation=params.get("activation", "tanh"), t=params["t"], psi_p=params["psi_p"],
              psi_n=params["psi_n"], atoms=[tuple(a) for a in atoms] if atoms else None,
              sigma_x2=None if atoms else params.get("sigma_x", 1.0) ** 2, d=params.get("d"))
    if params.get("curves"):
        taus = tau_grid(*params.get("taus", (TAUS["tau_min"], TAUS["tau_max"], TAUS["n_tau"])))
        out = predict(**kw, taus=taus, test_loss=True, ge_d=params.get("ge_d", 32),
                      ge_seeds=tuple(params.get("ge_seeds", (0,))))
    else:
        out = predict(**kw)
    arr = {k: np.asarray(v) for k, v in out.items() if isinstance(v, np.ndarray)}
    scal = {k: v for k, v in out.items() if not isinstance(v, np.ndarray)}
    return scal, arr


def theory_spectrum(params: dict):
    """Density of U (Theorem 3.1) on a log grid covering every bulk."""
    from rfdiff.theory import solve_spectrum
    atoms = params.get("atoms")
    kw = dict(activation=params.get("activation", "tanh"), t=params["t"], psi_p=params["psi_p"],
              psi_n=params["psi_n"], atoms=[tuple(a) for a in atoms] if atoms else None)
    first = solve_spectrum(**kw, lambdas=np.array([1.0]))
    edges = first.edges
    from rfdiff.theory import classify_bulks, ge_constants
    c = ge_constants(kw["activation"], params["t"], float(first.params.sigma_x2))
    labels = classify_bulks(edges, first.bulk_masses, first.params, c.mu1, c.Gamma2, params["t"]) if edges else {}
    lam = []
    for lo, hi in edges:   # dense points in every bulk (linear, denser near the edges)
        u = 0.5 - 0.5 * np.cos(np.linspace(0, math.pi, params.get("n_per_bulk", 400)))
        lam.append(lo + (hi - lo) * u)
    lam = np.unique(np.concatenate(lam)) if lam else np.logspace(-2, 2, 400)
    res = solve_spectrum(**kw, lambdas=lam, find_edges=False)
    scal = {"edges": [list(map(float, e)) for e in edges], "bulk_masses": first.bulk_masses, "labels": labels,
            "atom_location": first.atom_location, "atom_weight": first.atom_weight,
            "atom_weight_formula": first.atom_weight_formula, "n_nonconverged": res.n_nonconverged}
    return scal, {"lambdas": res.lambdas, "rho": res.rho}


def theory_density_grid(params: dict):
    """ρ(λ) on a log grid [lo, hi] (``grid = [lo, hi, n]``), with the finite-d correction when ``d`` is given."""
    from rfdiff.theory import solve_spectrum
    atoms = params.get("atoms")
    lo, hi, n = params["grid"]
    res = solve_spectrum(params.get("activation", "tanh"), params["t"], params["psi_p"], params["psi_n"],
                         lambdas=np.geomspace(lo, hi, int(n)), atoms=[tuple(a) for a in atoms] if atoms else None,
                         find_edges=False, d=params.get("d"))
    return {"n_nonconverged": res.n_nonconverged}, {"lambdas": res.lambdas, "rho": res.rho}


def adam_curves(params: dict):
    """Full-batch Adam on the exact noise-averaged loss (rfdiff.training), all metrics logged."""
    import jax

    from rfdiff import model, timescales
    from rfdiff.training import TrainConfig, train_problem
    cfg = _config(params)
    prob = model.build_problem(cfg)
    tc = TrainConfig(optimizer="adam", eta=params["eta"], tau_max=params["tau_max"], n_log=params.get("n_log", 60),
                     noise="exact", log_chunk=params.get("log_chunk", 20))
    r = train_problem(jax.random.PRNGKey(cfg.seed + 7), tc, prob)
    tau = np.asarray(r["tau"])
    tm = timescales.tau_mem(tau, np.asarray(r["gen_gap"]), params.get("mem_frac", 0.5), params.get("mem_abs", 0.05))
    steps = np.asarray(r["step"])
    arr = {k: np.asarray(r[k]) for k in ("tau", "step", "train_loss", "test_loss", "gen_gap", "score_error")}
    tmem_steps = float(np.interp(math.log(tm["tau_mem"]), np.log(tau), steps)) if math.isfinite(tm["tau_mem"]) \
        else math.nan
    return {"tau_mem": tm["tau_mem"], "tau_mem_abs": tm["tau_mem_abs"], "tau_mem_steps": tmem_steps,
            "final_gap": tm["final_gap"], "psi_n": cfg.psi_n, "psi_p": cfg.psi_p}, arr
