"""The paper's random-features figures and claims as sweep units and summaries (docs/theory.md §6).

Every figure of Bonnaire, Urfin, Biroli, Mézard (2025) that concerns the RF model, and the
finite-size ladder that tells how fast the finite-d model approaches the d → ∞ theory, is a
list of units (:func:`units`) — :class:`rfdiff.study.Study` (simulation + theory, timescales by
one rule), :class:`DensityUnit` (a theoretical density on a grid) or :class:`TrainingUnit`
(iterative training: Adam, or the authors' fresh-noise gradient descent) — run by
:func:`run_unit` through :func:`rfdiff.sweep.run_sweep`, and a summary (:func:`summarize`) of
the key numbers with their intervals (:mod:`rfdiff.stats`), which ``rfdiff_analysis/report.py`` turns
into verdicts. Sizes are in :data:`PRESETS` ("full": the paper's sizes where 2 cores allow;
"quick": a smoke version).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional

import jax
import numpy as np

from .. import dynamics, fluctuations, training
from ..diffusion import delta
from ..model import build_problem, DataSpec, RFConfig
from ..results import Curves, register
from ..stats import fit_finite_size, fit_power_law, mean_ci
from ..study import run_study, Study, StudyOptions, StudyResult, TauGrid
from ..theory import classify_bulks, ge_constants, solve_spectrum
from ..timescales import extract, first_crossing, tau_mem as tm_rule

__all__ = ["FIGURES", "PRESETS", "DensityUnit", "Density", "TrainingUnit", "TrainingOutcome", "run_unit", "units",
           "summarize", "LADDER_QUANTITIES", "collapse_spread"]

FIGURES = ("finite_size_scaling", "spectrum", "learning_curves", "min_score", "sigma_x", "adam", "scaling",
           "heatmap", "phase", "procedure")
TAUS = TauGrid(1e-2, 1e8, 161)
ATOMS_2 = ((0.5, 0.5), (1.5, 0.5))                    # ρ_Σ = ½δ_0.5 + ½δ_1.5

PRESETS: dict = {
    "full": {
        "ladder": [dict(ds=(16, 24, 32, 48, 64, 100), psi_p=64.0, psi_ns=(4.0, 8.0, 16.0, 32.0), t=0.1,
                        seeds=(0, 1, 2), extra_seeds=(3, 4)),
                   dict(ds=(16, 24, 32, 48, 64, 100), psi_p=64.0, psi_ns=(8.0,), t=0.01, seeds=(0, 1, 2),
                        extra_seeds=(3, 4))],
        "spectrum": dict(d=100, psi_p=64.0, psi_ns=(8.0, 32.0), t=0.01),
        "learning_curves": dict(d=100, psi_p=64.0, psi_ns=(4.0, 8.0, 16.0, 32.0), t=0.1),
        "min_score": dict(d=100, psi_p=32.0, psi_ns=(1.0, 2.0, 4.0, 8.0, 16.0, 32.0), t=0.01, seeds=tuple(range(10))),
        "sigma_x": dict(d=100, psi_p=64.0, psi_ns=(4.0, 8.0, 16.0, 32.0), t=0.1, sigma_x=(0.5, 2.0), seeds=(0,)),
        "adam": dict(d=32, psi_p=32.0, psi_ns=(2.0, 4.0, 8.0, 16.0), t=0.1, eta=1e-3, steps=60000, gap_level=0.3,
                     seeds=(0, 1, 2, 3, 4)),
        "scaling": dict(d=8, p=8192, ns=(12, 16, 24, 32, 64, 128, 256, 512), t=0.1,
                        seeds=(0, 1, 2), n_fixed=64, p_scan=(1024, 2048, 4096, 8192)),
        "heatmap": dict(d=12, psi_ns=(1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0), psi_ps=(4.0, 8.0, 16.0, 32.0, 64.0, 128.0),
                        t=0.1, taus=(1e3, 1e4)),
        "phase": dict(taus=(1e2, 1e3, 1e4, 1e5), gap_thr=0.1),
        "procedure": dict(d=100, psi_p=64.0, psi_n=8.0, t=0.1, steps=20000, lr_factor=1e-2, n_log=40, draws=64,
                          checks=6),
    },
    "quick": {
        "ladder": [dict(ds=(8, 12, 16), psi_p=64.0, psi_ns=(4.0, 8.0), t=0.1, seeds=(0, 1, 2), extra_seeds=(3, 4))],
        "spectrum": dict(d=16, psi_p=64.0, psi_ns=(8.0, 32.0), t=0.01),
        "learning_curves": dict(d=16, psi_p=64.0, psi_ns=(4.0, 8.0), t=0.1),
        "min_score": dict(d=16, psi_p=32.0, psi_ns=(1.0, 2.0, 4.0, 8.0, 16.0), t=0.01, seeds=(0, 1, 2, 3, 4)),
        "sigma_x": dict(d=12, psi_p=64.0, psi_ns=(4.0, 8.0, 16.0), t=0.1, sigma_x=(0.5, 2.0), seeds=(0,)),
        "adam": dict(d=8, psi_p=32.0, psi_ns=(2.0, 4.0, 8.0), t=0.1, eta=1e-2, steps=8000, gap_level=0.3,
                     seeds=(0, 1, 2, 3, 4)),
        "scaling": dict(d=8, p=1024, ns=(12, 16, 24, 32, 48, 64), t=0.1, seeds=(0, 1, 2, 3, 4), n_fixed=32,
                        p_scan=(256, 512, 1024)),
        "heatmap": dict(d=8, psi_ns=(1.0, 2.0, 8.0, 32.0), psi_ps=(4.0, 16.0, 64.0), t=0.1, taus=(1e3, 1e4)),
        "phase": dict(taus=(1e2, 1e3, 1e4, 1e5), gap_thr=0.1),
        "procedure": dict(d=16, psi_p=16.0, psi_n=4.0, t=0.1, steps=2000, lr_factor=1e-2, n_log=16, draws=64,
                          checks=4),
    },
}
# ladder quantities: (name, where it is read on each side)
LADDER_QUANTITIES = ("train_loss_inf", "test_loss_inf", "min_score_error", "tau_gen", "tau_mem", "lambda_mem",
                     "lambda_mem_upper")
# candidate leading corrections: 1/n for the losses (measured: n × error ≈ const); 1/√n as well for the
# spectral edges and the timescales they set (the training points' norms spread by √(2/d))
FINITE_SIZE_EXPONENTS = {"train_loss_inf": (1.0,), "test_loss_inf": (1.0,), "min_score_error": (1.0,),
                         "tau_gen": (1.0, 0.5), "tau_mem": (1.0, 0.5), "lambda_mem": (1.0, 0.5),
                         "lambda_mem_upper": (1.0, 0.5)}


# ----------------------------------------------------------------------------------------------
# units


def study(d: int, p: int, n: int, t: float, seed: int, *, model: str = "exact", theory: bool = True,
          sigma_x: float = 1.0, data: str = "isotropic", atoms=None, taus: TauGrid = TAUS) -> Study:
    """A :class:`Study` with the figure defaults (τ ∈ [1e-2, 1e8], tanh, Mehler tolerance 1e-8)."""
    spec = DataSpec(kind=data, sigma_x=sigma_x, atoms=tuple(tuple(a) for a in atoms) if atoms else None)
    return Study(RFConfig(d=int(d), p=int(p), n=int(n), t=float(t), data=spec, seed=int(seed), n_emp=2048),
                 StudyOptions(taus=taus, model=model, theory=theory))


@register
@dataclasses.dataclass(frozen=True)
class DensityUnit:
    """The theory's density ρ(λ) on a log grid (Theorem 3.1; with the finite-d correction when ``d`` is set)."""

    t: float
    psi_p: float
    psi_n: float
    atoms: Optional[tuple] = None
    d: Optional[int] = None
    grid: tuple = (1e-3, 1e3, 600)


@register
@dataclasses.dataclass(frozen=True, eq=False)
class Density:
    lambdas: np.ndarray
    rho: np.ndarray
    edges: list
    atom_location: float
    atom_weight: float
    labels: dict


@register
@dataclasses.dataclass(frozen=True)
class TrainingUnit:
    """Iterative training on one problem: Adam on the exact loss, or gradient descent with fresh noise
    at the authors' learning rate (with the exact mean trajectory and the predicted fluctuation floor)."""

    config: RFConfig
    optimizer: str = "adam"
    noise: str = "exact"
    eta: float = 1e-2
    steps: int = 10000
    n_log: int = 60
    draws: int = 0          # Monte Carlo draws per checkpoint for the fluctuation floor (0: none)
    checks: int = 6         # checkpoints where the floor is predicted


@register
@dataclasses.dataclass(frozen=True, eq=False)
class TrainingOutcome:
    """Logged curves of the iterative run; for gradient descent also the exact mean trajectory at the same
    steps (``mean``, discrete GD per mode) and the predicted fluctuation floor."""

    curves: Curves
    step: np.ndarray
    mean: Optional[Curves] = None
    floor: Optional[object] = None


def run_density(unit: DensityUnit) -> Density:
    lo, hi, k = unit.grid
    atoms = [tuple(a) for a in unit.atoms] if unit.atoms else None
    res = solve_spectrum("tanh", unit.t, unit.psi_p, unit.psi_n, atoms=atoms, d=unit.d,
                         lambdas=np.geomspace(lo, hi, int(k)))
    c = ge_constants("tanh", unit.t, float(res.params.sigma_x2))
    labels = classify_bulks(res.edges, res.bulk_masses, res.params, c.mu1, c.Gamma2, unit.t) if res.edges else {}
    return Density(res.lambdas, res.rho, [list(map(float, e)) for e in res.edges], float(res.atom_location),
                   float(res.atom_weight), labels)


def run_training(unit: TrainingUnit) -> TrainingOutcome:

    cfg = unit.config
    prob = build_problem(cfg)
    tc = training.TrainConfig(optimizer=unit.optimizer, eta=unit.eta, tau_max=unit.steps * unit.eta / cfg.d**2,
                              n_log=unit.n_log, noise=unit.noise, log_chunk=20)
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(cfg.seed + 7)
    res = training.train_problem(key, tc, prob)
    if unit.optimizer != "gd":
        return TrainingOutcome(res.curves, res.step)
    dyn = dynamics.from_problem(prob)
    mean = dyn.curves(res.curves.tau, eta=unit.eta)
    floor = None
    if unit.draws:
        Q, lam = np.asarray(dyn.Q), np.asarray(dyn.lam)
        QUQ = dynamics.congruence(prob.pop.U, Q)
        idx = np.unique(np.round(np.geomspace(1, res.step.size, unit.checks)).astype(int) - 1)
        rows = []
        for j in idx:
            A = np.asarray(dyn.A(float(res.curves.tau[j]), eta=unit.eta))
            g = fluctuations.fresh_gradients(jax.random.PRNGKey(1000 + int(j)), A, prob.W, prob.X, cfg.t,
                                             cfg.activation, unit.draws)
            rows.append(fluctuations.excess_losses(fluctuations.noise_covariance(g, Q), lam, QUQ, unit.eta,
                                                   int(res.step[j]), cfg.d, cfg.t))
        tr, te = np.array(rows).T
        floor = fluctuations.FloorPrediction(res.curves.tau[idx], res.step[idx], tr, te, te / delta(cfg.t), unit.draws)
    return TrainingOutcome(res.curves, res.step, mean, floor)


def run_unit(unit):
    """The unit function of the figures sweep: dispatches on the unit's type."""
    if isinstance(unit, Study):
        return run_study(unit)
    if isinstance(unit, DensityUnit):
        return run_density(unit)
    if isinstance(unit, TrainingUnit):
        return run_training(unit)
    raise ValueError(f"unit must be a Study, DensityUnit or TrainingUnit, got {type(unit).__name__}")


def _ladder_seeds(L: dict, d: int) -> tuple:
    return tuple(L["seeds"]) + (tuple(L.get("extra_seeds", ())) if d == max(L["ds"]) else ())


def ladder_study(L: dict, d: int, psi_n: float, seed: int, model: str = "exact") -> Study:
    """One rung of a ladder ``L``: the theory rides along with the first seed (at every d, or only at the
    largest d when ``L["theory"] == "largest_d"``); the GE control needs no theory."""
    p, n = int(round(L["psi_p"] * d)), int(round(psi_n * d))
    first = seed == _ladder_seeds(L, d)[0] and (L.get("theory", "all_d") == "all_d" or d == max(L["ds"]))
    return study(d, p, n, L["t"], seed, model=model, theory=(model == "exact" and first))


def _ladder_units(P) -> list:
    out = []
    for L in P["ladder"]:
        for d in L["ds"]:
            for pn in L["psi_ns"]:
                for s in _ladder_seeds(L, d):
                    out.append(ladder_study(L, d, pn, s))
                    if s in L["seeds"]:
                        out.append(ladder_study(L, d, pn, s, "ge"))
    return out


def units(figure: str, P: dict) -> list:
    """The units figure ``figure`` needs at sizes ``P`` (a preset of :data:`PRESETS`)."""
    if figure == "finite_size_scaling":
        return _ladder_units(P)
    if figure == "spectrum":
        S = P["spectrum"]
        out = []
        for pn in S["psi_ns"]:
            p, n = int(round(S["psi_p"] * S["d"])), int(round(pn * S["d"]))
            for data, atoms in (("isotropic", None), ("spectrum", ATOMS_2)):
                out.append(study(S["d"], p, n, S["t"], 0, data=data, atoms=atoms))
                for dd in (None, S["d"]):
                    out.append(DensityUnit(S["t"], S["psi_p"], pn, atoms, dd, (1e-3, 1e3, 1200)))
        return out
    if figure == "learning_curves":
        L = P["learning_curves"]
        lad = next(x for x in P["ladder"] if x["t"] == L["t"] and L["d"] in x["ds"])
        seeds = tuple(lad["seeds"]) + tuple(lad.get("extra_seeds", ()))
        return [study(L["d"], int(L["psi_p"] * L["d"]), int(pn * L["d"]), L["t"], s, theory=(s == seeds[0]))
                for pn in L["psi_ns"] for s in seeds]
    if figure == "min_score":
        M = P["min_score"]
        return [study(M["d"], int(M["psi_p"] * M["d"]), int(pn * M["d"]), M["t"], s, theory=(s == M["seeds"][0]))
                for pn in M["psi_ns"] for s in M["seeds"]]
    if figure == "sigma_x":
        S = P["sigma_x"]
        return [study(S["d"], int(S["psi_p"] * S["d"]), int(pn * S["d"]), S["t"], s, sigma_x=sx)
                for sx in S["sigma_x"] for pn in S["psi_ns"] for s in S["seeds"]]
    if figure == "adam":
        A = P["adam"]
        return [TrainingUnit(RFConfig(d=A["d"], p=int(A["psi_p"] * A["d"]), n=int(pn * A["d"]), t=A["t"], seed=s,
                                      n_emp=1024), "adam", "exact", A["eta"], A["steps"], 60)
                for pn in A["psi_ns"] for s in A["seeds"]]
    if figure == "scaling":
        S = P["scaling"]
        out = [study(S["d"], S["p"], n, S["t"], s, theory=(s == S["seeds"][0])) for n in S["ns"] for s in S["seeds"]]
        return out + [study(S["d"], p, S["n_fixed"], S["t"], s, theory=(s == S["seeds"][0]))
                      for p in S["p_scan"] for s in S["seeds"]]
    if figure in ("heatmap", "phase"):
        H = P["heatmap"]
        return [study(H["d"], int(pp * H["d"]), int(pn * H["d"]), H["t"], 0) for pp in H["psi_ps"]
                for pn in H["psi_ns"]]
    if figure == "procedure":
        R = P["procedure"]
        d, t = R["d"], R["t"]
        p, n = int(R["psi_p"] * d), int(R["psi_n"] * d)
        eta = p * R["lr_factor"] * d / delta(t)   # the authors' lr 1e-2·d/Δ_t acts on A/√p
        return [TrainingUnit(RFConfig(d=d, p=p, n=n, t=t, seed=0, n_emp=2048), "gd", "fresh", eta, R["steps"],
                             R["n_log"], R["draws"], R["checks"]),
                study(d, p, n, t, 0)]
    raise ValueError(f"figure must be one of {', '.join(FIGURES)}, got {figure!r}")


# ----------------------------------------------------------------------------------------------
# summaries


def timescales_of(res: StudyResult, side: str):
    """The timescales of one side, re-read from its stored curves and spectrum by the current rule
    (:func:`rfdiff.timescales.extract`), so a cached unit never carries a stale definition."""
    s = getattr(res, side)
    c = res.config
    return extract(s.curves, res.study.options.thresholds, s.spectrum, n=c.n, p=c.p, d=c.d, t=c.t)


def _value(res: StudyResult, side: str, q: str) -> float:
    """Quantity ``q`` of one side ("simulation", "theory", "theory_d_inf") of a study result."""
    s = getattr(res, side)
    if s is None:
        return math.nan
    if q == "train_loss_inf":
        return float(s.limit.train_loss[-1])
    if q == "test_loss_inf":
        return float(s.limit.test_loss[-1]) if s.limit.test_loss is not None else math.nan
    return float(getattr(timescales_of(res, side), q))


def _theory_d_inf(res: StudyResult, q: str) -> float:
    """The d → ∞ theory value of a ladder quantity: curves-based ones from the d → ∞ theory's curves by the
    simulation's rule; the memorisation-bulk edges from the support of Theorem 3.1 (the limit of the
    quantile rule as p → ∞)."""
    pred = res.prediction_d_inf
    if q == "lambda_mem":
        return pred.lambda_mem_support
    if q == "lambda_mem_upper":
        lab = pred.bulk_labels or {}
        return pred.edges[lab["memorisation"]][1] if lab.get("memorisation") is not None else math.nan
    return _value(res, "theory_d_inf", q)


def ladder_summary(P: dict, get: Callable) -> dict:
    """Per (t, ψ_n) and quantity: fits y = a + b n^-γ (+ c n^-2γ) of the exact model and of the GE control,
    the d → ∞ theory, and the points (docs/theory.md §6.3)."""
    out = {}
    for L in P["ladder"]:
        for pn in L["psi_ns"]:
            key = f"t={L['t']:g},psi_n={pn:g}"
            rows = {"exact": [], "ge": []}
            theory_inf, theory_d = {}, {}
            for d in L["ds"]:
                n = int(round(pn * d))
                for s in _ladder_seeds(L, d):
                    r = get(ladder_study(L, d, pn, s))
                    if r is not None:
                        rows["exact"].append((n, d, s, {q: _value(r, "simulation", q) for q in LADDER_QUANTITIES}))
                        if r.theory is not None:
                            theory_d[d] = {q: _value(r, "theory", q) for q in LADDER_QUANTITIES}
                            theory_inf = {q: _theory_d_inf(r, q) for q in LADDER_QUANTITIES}
                    if s in L["seeds"]:
                        g = get(ladder_study(L, d, pn, s, "ge"))
                        if g is not None:
                            rows["ge"].append((n, d, s, {q: _value(g, "simulation", q) for q in LADDER_QUANTITIES}))
            fits = {}
            for q in LADDER_QUANTITIES:
                fits[q] = {m: fit_finite_size([r[0] for r in rows[m]], [r[3][q] for r in rows[m]],
                                              exponents=FINITE_SIZE_EXPONENTS[q]) for m in rows}
            out[key] = {"t": L["t"], "psi_n": pn, "psi_p": L["psi_p"], "points": rows, "fits": fits,
                        "theory_d_inf": theory_inf, "theory_finite_d": theory_d}
    return out


def collapse_spread(curves: list, tau_mem: list, fractions=(0.1, 0.25, 0.75, 0.9)) -> dict:
    """Spread (max − min of log10) across curves of the rescaled time τ/τ_mem at which each gap reaches a
    fraction of its final value; one number per fraction (the collapse of Fig. 5A/B, docs/theory.md §6.1)."""
    out = {}
    for f in fractions:
        xs = []
        for c, tm in zip(curves, tau_mem):
            if c is None or not (tm > 0) or c.gen_gap is None or not c.gen_gap[-1] > 0:
                continue
            x = first_crossing(c.tau, c.gen_gap, f * c.gen_gap[-1], upward=True)
            if math.isfinite(x):
                xs.append(math.log10(x / tm))
        out[f"{f:g}"] = float(np.ptp(xs)) if len(xs) >= 2 else math.nan
    return out


def tau_mem_asymptotic(t: float, psi_p, psi_n) -> np.ndarray:
    """Theorem 3.2: ψ_p/(Δ_t λ_min), λ_min = s_t² + v_t²(1 − √(ψ_p/ψ_n))² for ψ_p > ψ_n, else ∞ (docs/theory.md §4.8)."""
    c = ge_constants("tanh", t, 1.0)
    pp, pn = np.broadcast_arrays(np.asarray(psi_p, float), np.asarray(psi_n, float))
    lmin = c.s2 + c.v2 * (1 - np.sqrt(pp / pn)) ** 2
    return np.where(pp > pn, pp / (c.delta * lmin), np.inf)


def summarize(figure: str, P: dict, get: Callable) -> dict:
    """Key numbers of ``figure`` (estimates with intervals) from unit results; ``get(unit)`` returns a result or None."""
    if figure == "finite_size_scaling":
        return ladder_summary(P, get)
    if figure == "spectrum":
        return _spectrum_summary(P, get)
    if figure == "learning_curves":
        return _curves_summary(P, get)
    if figure == "min_score":
        M = P["min_score"]
        pts = {"simulation": [], "theory": []}
        per = {}
        for pn in M["psi_ns"]:
            vals = []
            for s in M["seeds"]:
                r = get(study(M["d"], int(M["psi_p"] * M["d"]), int(pn * M["d"]), M["t"], s, theory=(s == M["seeds"][0])))
                if r is None:
                    continue
                v = _value(r, "simulation", "min_score_error")
                vals.append(v)
                pts["simulation"].append((pn, v))
                if r.theory_d_inf is not None:
                    pts["theory"].append((pn, _value(r, "theory_d_inf", "min_score_error")))
            per[f"{pn:g}"] = {"simulation": mean_ci(vals), "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan}
        return {"per_psi_n": per, "fit_simulation": fit_power_law(*zip(*pts["simulation"])) if pts["simulation"] else None,
                "fit_theory": fit_power_law(*zip(*pts["theory"])) if pts["theory"] else None, "points": pts}
    if figure == "sigma_x":
        S = P["sigma_x"]
        out = {}
        for sx in S["sigma_x"]:
            sim, th, curves = [], [], {}
            for pn in S["psi_ns"]:
                for s in S["seeds"]:
                    r = get(study(S["d"], int(S["psi_p"] * S["d"]), int(pn * S["d"]), S["t"], s, sigma_x=sx))
                    if r is None:
                        continue
                    sim.append((pn, _value(r, "simulation", "tau_mem")))
                    if r.theory_d_inf is not None:
                        th.append((pn, _value(r, "theory_d_inf", "tau_mem")))
                    if s == S["seeds"][0]:
                        curves[f"{pn:g}"] = r
            out[f"{sx:g}"] = {"fit_simulation": fit_power_law(*zip(*sim)) if sim else None,
                              "fit_theory": fit_power_law(*zip(*th)) if th else None}
        return out
    if figure == "adam":
        return _adam_summary(P, get)
    if figure == "scaling":
        return _scaling_summary(P, get)
    if figure in ("heatmap", "phase"):
        return _heatmap_summary(P, get, figure)
    if figure == "procedure":
        return _procedure_summary(P, get)
    raise ValueError(f"figure must be one of {', '.join(FIGURES)}, got {figure!r}")


def _spectrum_summary(P, get) -> dict:
    S = P["spectrum"]
    out = {}
    for pn in S["psi_ns"]:
        p, n = int(round(S["psi_p"] * S["d"])), int(round(pn * S["d"]))
        for data, atoms in (("isotropic", None), ("spectrum", ATOMS_2)):
            r = get(study(S["d"], p, n, S["t"], 0, data=data, atoms=atoms))
            if r is None:
                continue
            pred = r.prediction_d_inf
            lab = pred.bulk_labels or {}
            pop = [pred.edges[k] for k in lab.get("population", [])]
            mem = pred.edges[lab["memorisation"]] if lab.get("memorisation") is not None else None
            first = min(e[0] for e in pred.edges) if pred.edges else math.nan
            cut = math.sqrt(pred.atom_location * first) if pred.edges else math.nan   # between the atom and the first bulk
            sim_sp, th_sp = r.simulation.spectrum, r.theory_d_inf.spectrum
            atom_mass = lambda sp: float(sp.weights[sp.nodes < cut].sum())  # noqa: E731  the same rule on both sides
            out[f"{data}_psin{pn:g}"] = {
                "theory_pop_bulk": [min(e[0] for e in pop), max(e[1] for e in pop)] if pop else None,
                "simulation_pop_bulk": [_value(r, "simulation", "lambda_pop"), float(sim_sp.nodes.max())],
                "theory_mem_bulk": mem,
                "simulation_mem_bulk": [_value(r, "simulation", "lambda_mem"), _value(r, "simulation", "lambda_mem_upper")],
                "theory_finite_d_mem_bulk": [_value(r, "theory", "lambda_mem"), _value(r, "theory", "lambda_mem_upper")],
                "atom_weight_formula": pred.atom_weight_formula, "atom_weight_asymptotic": pred.atom_weight_asymptotic,
                "theory_atom_mass": atom_mass(th_sp), "simulation_atom_mass": atom_mass(sim_sp), "atom_cut": cut,
                "theory_nonconverged": pred.diagnostics.get("n_nonconverged")}
    return out


def _curves_summary(P, get) -> dict:
    L = P["learning_curves"]
    lad = next(x for x in P["ladder"] if x["t"] == L["t"] and L["d"] in x["ds"])
    seeds = tuple(lad["seeds"]) + tuple(lad.get("extra_seeds", ()))
    sim_gen, th_gen, per, first = [], [], {}, {}
    for pn in L["psi_ns"]:
        tg, tm = [], []
        for s in seeds:
            r = get(study(L["d"], int(L["psi_p"] * L["d"]), int(pn * L["d"]), L["t"], s, theory=(s == seeds[0])))
            if r is None:
                continue
            tg.append(_value(r, "simulation", "tau_gen"))
            tm.append(_value(r, "simulation", "tau_mem"))
            sim_gen.append((pn * L["d"], _value(r, "simulation", "tau_gen")))
            if r.theory_d_inf is not None:
                th_gen.append((pn * L["d"], _value(r, "theory_d_inf", "tau_gen")))
                first[f"{pn:g}"] = r
        per[f"{pn:g}"] = {"tau_gen": mean_ci(tg), "tau_mem": mean_ci(tm)}
    rs = list(first.values())
    col = {"by_simulation_tau_mem": collapse_spread([r.simulation.curves for r in rs],
                                                    [_value(r, "simulation", "tau_mem") for r in rs]),
           "by_theory_tau_mem": collapse_spread([r.simulation.curves for r in rs],
                                                [_value(r, "theory_d_inf", "tau_mem") for r in rs]),
           "theory_by_theory_tau_mem": collapse_spread([r.theory_d_inf.curves for r in rs],
                                                       [_value(r, "theory_d_inf", "tau_mem") for r in rs])}
    return {"per_psi_n": per, "tau_gen_fit_simulation": fit_power_law(*zip(*sim_gen)) if sim_gen else None,
            "tau_gen_fit_theory": fit_power_law(*zip(*th_gen)) if th_gen else None, "collapse": col,
            "seeds": list(seeds)}


def _adam_summary(P, get) -> dict:
    A = P["adam"]
    pts, per = [], {}
    for pn in A["psi_ns"]:
        n = int(pn * A["d"])
        vals = []
        for s in A["seeds"]:
            r = get(units_adam_one(A, pn, s))
            if r is None or r.curves.gen_gap is None:
                continue
            steps_at = tm_rule(r.step.astype(float), r.curves.gen_gap, 0.5, A["gap_level"])["tau_mem_abs"]
            vals.append(steps_at)
            pts.append((n, steps_at))
        per[f"{n}"] = mean_ci(vals)
    return {"per_n": per, "fit_steps_vs_n": fit_power_law(*zip(*pts)) if pts else None, "gap_level": A["gap_level"]}


def units_adam_one(A, pn, s) -> TrainingUnit:
    return TrainingUnit(RFConfig(d=A["d"], p=int(A["psi_p"] * A["d"]), n=int(pn * A["d"]), t=A["t"], seed=s, n_emp=1024),
                        "adam", "exact", A["eta"], A["steps"], 60)


def _scaling_summary(P, get) -> dict:
    S = P["scaling"]
    out = {}
    for var, pairs in (("n", [(S["p"], n) for n in S["ns"]]), ("p", [(p, S["n_fixed"]) for p in S["p_scan"]])):
        pts = {k: [] for k in ("tau_mem_sim", "tau_gen_sim", "tau_mem_theory", "tau_gen_theory")}
        for p, n in pairs:
            for s in S["seeds"]:
                r = get(study(S["d"], p, n, S["t"], s, theory=(s == S["seeds"][0])))
                if r is None:
                    continue
                x = n if var == "n" else p
                if n > S["d"]:                         # the stated degenerate-point rule (n ≤ d: no memorisation bulk)
                    pts["tau_mem_sim"].append((x, _value(r, "simulation", "tau_mem")))
                pts["tau_gen_sim"].append((x, _value(r, "simulation", "tau_gen")))
                if r.theory_d_inf is not None:
                    if n > S["d"]:
                        pts["tau_mem_theory"].append((x, _value(r, "theory_d_inf", "tau_mem")))
                    pts["tau_gen_theory"].append((x, _value(r, "theory_d_inf", "tau_gen")))
        out[f"vs_{var}"] = {k: (fit_power_law(*zip(*v)) if len(v) >= 2 else None) for k, v in pts.items()}
        out[f"vs_{var}"]["points"] = pts
    out["psi_p_over_psi_n_min"] = S["p"] / max(S["ns"])
    out["d"], out["p"] = S["d"], S["p"]
    return out


def _heatmap_summary(P, get, figure) -> dict:
    H = P["heatmap"]
    grid = {}
    for pp in H["psi_ps"]:
        for pn in H["psi_ns"]:
            r = get(study(H["d"], int(pp * H["d"]), int(pn * H["d"]), H["t"], 0))
            if r is not None:
                c = r.simulation.curves
                grid[f"{pn:g},{pp:g}"] = {
                    "gap_at": {f"{tau:g}": float(np.interp(np.log(tau), np.log(c.tau), c.gen_gap))
                               for tau in set(H["taus"]) | set(P["phase"]["taus"])},
                    "final_gap": float(c.gen_gap[-1]), "tau_mem_sim": _value(r, "simulation", "tau_mem"),
                    "tau_mem_theory": _value(r, "theory_d_inf", "tau_mem") if r.theory_d_inf else math.nan}
    if figure == "heatmap":
        pn, pp = np.geomspace(min(H["psi_ns"]) / 1.5, max(H["psi_ns"]) * 1.5, 200), \
            np.geomspace(min(H["psi_ps"]) / 1.5, max(H["psi_ps"]) * 1.5, 200)
        return {"grid": grid, "boundary": {"psi_n": pn, "psi_p": pp,
                                           "tau_mem_asymptotic": tau_mem_asymptotic(H["t"], pp[:, None], pn[None, :])}}
    agree = tot = 0
    counts = {}
    for tau in P["phase"]["taus"]:
        for key, g in grid.items():
            pn, pp = map(float, key.split(","))
            sim = 2 if g["final_gap"] < P["phase"]["gap_thr"] else (1 if not tau >= g["tau_mem_sim"] else 0)
            # the theory's τ_mem read from its own curves by the simulation's rule (Theorem 3.2 where it has none)
            tm = g["tau_mem_theory"] if math.isfinite(g["tau_mem_theory"]) else float(tau_mem_asymptotic(H["t"], pp, pn))
            th = 2 if pn >= pp else (1 if tau < tm else 0)
            agree += int(sim == th)
            tot += 1
            counts.setdefault(f"{tau:g}", {}).setdefault(str(sim), 0)
            counts[f"{tau:g}"][str(sim)] += 1
    return {"grid": grid, "agreement": agree / tot if tot else math.nan, "counts": counts}


def _procedure_summary(P, get) -> dict:
    u = units("procedure", P)
    tr, st = get(u[0]), get(u[1])
    if tr is None:
        return {}
    c, m = tr.curves, tr.mean
    rel = (c.train_loss - m.train_loss) / m.train_loss
    out = {"tau": c.tau, "relative_train_excess": rel, "max_relative_train_excess": float(np.max(rel)),
           "min_relative_train_excess_late": float(np.min(rel[c.tau >= c.tau[-1] / 100])),
           "min_score_error_fresh": float(np.min(c.score_error)), "min_score_error_mean": float(np.min(m.score_error)),
           "eta": u[0].eta, "steps": u[0].steps}
    if tr.floor is not None:
        f = tr.floor
        j = np.searchsorted(c.tau, f.tau)
        out["floor"] = {"tau": f.tau, "measured_train_excess": c.train_loss[j] - m.train_loss[j],
                        "predicted_train_excess": f.train_excess,
                        "measured_score_excess": c.score_error[j] - m.score_error[j],
                        "predicted_score_excess": f.score_excess}
    if st is not None:
        out["gradient_flow_min_score_error"] = _value(st, "simulation", "min_score_error")
    return out
