"""Synthetic StudyResults for the large-p study: curves whose τ_mem and τ_gen follow a chosen law."""
import math

import numpy as np

from rfdiff.results import Curves, Thresholds
from rfdiff.study import Side, StudyResult
from rfdiff.timescales import extract

GEN_SHIFT = math.exp(-math.sqrt(0.1))   # τ_gen / τ_g of the score-error shape below (10 % above its minimum)


def curves(taus: np.ndarray, tau_mem: float, tau_g: float) -> Curves:
    """Gap g·x/(1+x), x = τ/τ_mem (half its final value at τ_mem); score error 1 + ln²(τ/τ_g) (τ_gen = τ_g·GEN_SHIFT)."""
    x = taus / tau_mem
    gap = 0.3 * x / (1 + x)
    train = 1.0 - 0.5 * gap
    score = 0.01 * (1.0 + np.log(taus / tau_g) ** 2)
    return Curves(taus, train, train + gap, gap, score, method="synthetic")


def side(study, tau_mem: float, tau_g: float) -> Side:
    c = curves(study.options.taus.values(), tau_mem, tau_g)
    cfg = study.config
    return Side(c, None, extract(c, Thresholds(), None, n=cfg.n, p=cfg.p, d=cfg.d, t=cfg.t))


def law(label, alpha: float = 1.0, b: float = 0.0, beta: float = 0.3, seed_noise: float = 0.0):
    """τ_mem = 1000 ψ_n^α (1 + b/d) (× a seed factor), τ_g = 10 ψ_n^β."""
    f = 1.0 + seed_noise * math.sin(1.7 * label.seed + 0.3)
    return 1000.0 * label.psi_n ** alpha * (1.0 + b / label.d) * f, 10.0 * label.psi_n ** beta * f


def result(label, study, alpha: float = 1.0, b: float = 0.0, theory_alpha: float = 1.0,
           seed_noise: float = 0.0) -> StudyResult:
    tm, tg = law(label, alpha, b, seed_noise=seed_noise)
    th = side(study, 1000.0 * label.psi_n ** theory_alpha, 10.0 * label.psi_n ** 0.3) if study.options.theory else None
    return StudyResult(study, side(study, tm, tg), th, th, diagnostics={"method": "dense"},
                       timings={"matrices": 1.0, "dynamics": 2.0})


def theory_sides(config, options, alpha: float = 1.0, alpha_finite_d: float = 1.1):
    """Stand-in for :func:`rfdiff.study.theory_sides`: d → ∞ τ_mem = 1000 ψ_n^alpha, finite-d 1000 ψ_n^alpha_finite_d (1 + 1/d)."""
    from rfdiff.study import Study
    study = Study(config, options)
    pn = config.n / config.d
    fin = side(study, 1000.0 * pn ** alpha_finite_d * (1.0 + 1.0 / config.d), 10.0 * pn ** 0.3)
    return fin, side(study, 1000.0 * pn ** alpha, 10.0 * pn ** 0.3), None, None
