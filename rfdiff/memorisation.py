"""Memorisation and generation-quality metrics for generated samples (docs/theory.md §5).

* Nearest / second-nearest training distances, streamed over chunks of the training set with a
  running top-2, so n = 65 536 training points × 10 000 samples needs only one
  (samples × chunk) distance block at a time.
* A sample is memorised when ``‖x - a¹‖/‖x - a²‖ < k`` (a¹, a² its nearest and second-nearest
  training points), k = 1/3 by default (also 1/2 and 1/4); ``f_mem`` is the memorised fraction,
  with percentile-bootstrap 95% intervals.
* The fraction of samples closer to the training set than to a fresh test set of the same size
  (≈ ½ for a model that generalises, → 1 for one that copies).
* For Gaussian data, distribution-level quality from sample moments: Gaussian KL divergence and
  Wasserstein-2 distance between N(mean̂, Σ̂) of the samples and the true Gaussian, with the
  finite-sample floor a perfect sampler would show.
* ``EMM_ε(τ) = max{n : f_mem(n, τ) ≥ 1 - ε}`` from a table over n, and the early-stopping rule
  ``τ_stop = c·n`` with c calibrated at the smallest n.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from ._util import check_fraction, check_points, check_positive, check_positive_int, x64

DEFAULT_KS = (1.0 / 3.0, 0.5, 0.25)


# ----------------------------------------------------------------------------- nearest neighbours

@functools.partial(jax.jit, static_argnames=("chunk",))
def _top2_scan(Y, Xpad, valid, chunk: int):
    """Running two smallest squared distances (N, 2) and the index of the nearest, over chunks of Xpad."""
    n_chunks = Xpad.shape[0] // chunk
    Xc = Xpad.reshape(n_chunks, chunk, -1)
    Vc = valid.reshape(n_chunks, chunk)
    y2 = jnp.sum(Y * Y, axis=1)[:, None]
    inf = jnp.asarray(jnp.inf, Y.dtype)

    def body(carry, inp):
        best, arg = carry                                        # (N, 2), (N,)
        Xb, vb, offset = inp
        sq = y2 - 2.0 * Y @ Xb.T + jnp.sum(Xb * Xb, axis=1)[None]
        sq = jnp.where(vb[None], jnp.maximum(sq, 0.0), inf)
        # two smallest of this chunk by two min-passes (lax.top_k is ~50x slower on CPU)
        i1 = jnp.argmin(sq, axis=1)
        c1 = jnp.take_along_axis(sq, i1[:, None], axis=1)[:, 0]
        c2 = jnp.min(jnp.where(jnp.arange(sq.shape[1])[None] == i1[:, None], inf, sq), axis=1)
        b1, b2 = best[:, 0], best[:, 1]
        # merge two sorted pairs: smallest = min(b1, c1); second = min(max(b1, c1), min(b2, c2))
        new_best = jnp.stack([jnp.minimum(b1, c1), jnp.minimum(jnp.maximum(b1, c1), jnp.minimum(b2, c2))], axis=1)
        new_arg = jnp.where(c1 < b1, i1.astype(arg.dtype) + offset, arg)
        return (new_best, new_arg), None

    init = (jnp.full((Y.shape[0], 2), inf, Y.dtype), jnp.zeros(Y.shape[0], jnp.int32))
    offsets = jnp.arange(n_chunks, dtype=jnp.int32) * chunk
    (best, arg), _ = jax.lax.scan(body, init, (Xc, Vc, offsets))
    return best, arg


@x64
def nearest_two(samples, train, chunk: int = 2048, sample_batch: int = 16384):
    """Distances to the nearest and second-nearest training points, and the nearest's index (docs/theory.md §5).

    Streams over chunks of ``train`` keeping a running top-2 per sample (float64), so memory is
    O(sample_batch × chunk) whatever the training-set size.

    Args:
        samples: (N, d) generated points.
        train: (n, d) training points, n ≥ 2.
        chunk: training points per block.
        sample_batch: samples per call of the compiled scan.

    Returns:
        ``(d1, d2, i1)``: numpy arrays (N,), (N,), (N,) — Euclidean distances and the nearest index.
    """
    train = check_points("train", train)
    samples = check_points("samples", samples, train.shape[1])
    n = train.shape[0]
    if n < 2:
        raise ValueError(f"train must contain at least 2 points for a second-nearest distance, got n = {n}")
    chunk = min(check_positive_int("chunk", chunk), n)
    sample_batch = check_positive_int("sample_batch", sample_batch)
    n_pad = -(-n // chunk) * chunk
    Xpad = np.zeros((n_pad, train.shape[1]))
    Xpad[:n] = train
    valid = np.arange(n_pad) < n
    Xpad, valid = jnp.asarray(Xpad, jnp.float64), jnp.asarray(valid)
    d1, d2, i1 = [], [], []
    for start in range(0, samples.shape[0], sample_batch):
        Yb = samples[start:start + sample_batch]
        m = Yb.shape[0]
        if m < sample_batch and samples.shape[0] > sample_batch:   # keep one compiled shape
            Yb = np.concatenate([Yb, np.zeros((sample_batch - m, Yb.shape[1]))])
        best, arg = _top2_scan(jnp.asarray(Yb, jnp.float64), Xpad, valid, chunk)
        best, arg = np.asarray(best)[:m], np.asarray(arg)[:m]
        d1.append(np.sqrt(best[:, 0]))
        d2.append(np.sqrt(best[:, 1]))
        i1.append(arg)
    return np.concatenate(d1), np.concatenate(d2), np.concatenate(i1)


def distance_ratio(samples, train, chunk: int = 2048) -> np.ndarray:
    """``‖x - a¹‖/‖x - a²‖`` per sample (docs/theory.md §5); 0/0 (a sample on two coincident points) counts as 0."""
    d1, d2, _ = nearest_two(samples, train, chunk)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = d1 / d2
    return np.where(d2 > 0, r, 0.0)


def _check_k(k) -> float:
    k = check_positive("k", k)
    if k > 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    return k


def memorized(ratio, k: float = 1.0 / 3.0) -> np.ndarray:
    """Boolean mask ``ratio < k`` (docs/theory.md §5)."""
    return np.asarray(ratio) < _check_k(k)


def f_mem(ratio, k: float = 1.0 / 3.0) -> float:
    """Fraction of memorised samples, ``mean(ratio < k)`` (docs/theory.md §5)."""
    r = np.asarray(ratio)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"ratio must be a non-empty 1-D array, got shape {r.shape}")
    return float(np.mean(memorized(r, k)))


@x64
def bootstrap_ci(key: jax.Array, values, n_boot: int = 2000, level: float = 0.95,
                 batch: int = 256) -> tuple[float, float]:
    """Percentile-bootstrap interval for the mean of ``values`` (N,) (resampling samples with replacement).

    The samples are independent reverse trajectories, so this is the sampling uncertainty of
    f_mem (or of any mean) given the training set; it does not include training-set variability.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {v.shape}")
    n_boot = check_positive_int("n_boot", n_boot)
    check_fraction("level", level)
    means = _boot_means(key, jnp.asarray(v), n_boot, check_positive_int("batch", batch))
    alpha = 0.5 * (1.0 - level)
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _boot_means(key, v, n_boot, batch):
    N = v.shape[0]
    out = []
    for i, start in enumerate(range(0, n_boot, batch)):
        b = min(batch, n_boot - start)
        idx = jax.random.randint(jax.random.fold_in(key, i), (b, N), 0, N)
        out.append(np.asarray(jnp.mean(v[idx], axis=1)))
    return np.concatenate(out)


def f_mem_report(key: jax.Array, ratio, ks: Sequence[float] = DEFAULT_KS, n_boot: int = 2000,
                 level: float = 0.95) -> dict:
    """f_mem for each k with its bootstrap interval: ``{k: (f_mem, lo, hi)}`` keyed by ``f"{k:.4g}"`` (docs/theory.md §5)."""
    r = np.asarray(ratio)
    out = {}
    for j, k in enumerate(ks):
        flags = memorized(r, k).astype(np.float64)
        lo, hi = bootstrap_ci(jax.random.fold_in(key, j), flags, n_boot, level)
        out[f"{k:.4g}"] = (float(flags.mean()), lo, hi)
    return out


@x64
def closer_to_train_fraction(samples, train, test, chunk: int = 2048) -> float:
    """Fraction of samples whose nearest training point is closer than their nearest test point.

    ``test`` should be fresh draws from P_0 of the same size as ``train``; ≈ ½ when the model
    generalises, → 1 when it reproduces training points.
    """
    train = check_points("train", train)
    test = check_points("test", test, train.shape[1])
    if test.shape[0] != train.shape[0]:
        raise ValueError(f"test must have as many points as train ({train.shape[0]}), got {test.shape[0]}")
    d_train, _, _ = nearest_two(samples, np.concatenate([train, train[:1]]) if train.shape[0] == 1 else train, chunk)
    d_test, _, _ = nearest_two(samples, np.concatenate([test, test[:1]]) if test.shape[0] == 1 else test, chunk)
    return float(np.mean(d_train < d_test))


# ----------------------------------------------------------------------------- Gaussian quality

def sample_moments(samples) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean (d,) and unbiased covariance (d, d), in float64."""
    x = np.asarray(check_points("samples", samples), dtype=np.float64)
    if x.shape[0] < 2:
        raise ValueError("samples must contain at least 2 points for a covariance")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _check_gaussian(mean, cov, d=None, name="cov"):
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    cov = np.asarray(cov, dtype=np.float64)
    if cov.shape != (mean.size, mean.size):
        raise ValueError(f"{name} must be ({mean.size}, {mean.size}) to match the mean, got {cov.shape}")
    if d is not None and mean.size != d:
        raise ValueError(f"dimension mismatch: {mean.size} vs {d}")
    return mean, 0.5 * (cov + cov.T)


def gaussian_kl(mean1, cov1, mean2, cov2) -> float:
    """KL(N(m1, C1) ‖ N(m2, C2)) = ½[Tr(C2⁻¹C1) - d + (m2-m1)ᵀC2⁻¹(m2-m1) + log det C2 - log det C1]."""
    m1, C1 = _check_gaussian(mean1, cov1, name="cov1")
    m2, C2 = _check_gaussian(mean2, cov2, m1.size, name="cov2")
    L2 = np.linalg.cholesky(C2)
    s1, logdet1 = np.linalg.slogdet(C1)
    if s1 <= 0:
        return float("inf")
    logdet2 = 2.0 * np.sum(np.log(np.diag(L2)))
    M = scipy.linalg.solve_triangular(L2, C1, lower=True)
    tr = np.trace(scipy.linalg.solve_triangular(L2, M.T, lower=True))
    dm = scipy.linalg.solve_triangular(L2, m2 - m1, lower=True)
    return float(0.5 * (tr - m1.size + dm @ dm + logdet2 - logdet1))


def _sqrtm_psd(C):
    lam, Q = np.linalg.eigh(0.5 * (C + C.T))
    return (Q * np.sqrt(np.maximum(lam, 0.0))) @ Q.T


def wasserstein2_gaussian(mean1, cov1, mean2, cov2) -> float:
    """W₂ between Gaussians: ``W₂² = ‖m1-m2‖² + Tr C1 + Tr C2 - 2 Tr (C2^{1/2} C1 C2^{1/2})^{1/2}``."""
    m1, C1 = _check_gaussian(mean1, cov1, name="cov1")
    m2, C2 = _check_gaussian(mean2, cov2, m1.size, name="cov2")
    S2 = _sqrtm_psd(C2)
    cross = np.sum(np.sqrt(np.maximum(np.linalg.eigvalsh(S2 @ C1 @ S2), 0.0)))
    w2sq = float(np.sum((m1 - m2) ** 2) + np.trace(C1) + np.trace(C2) - 2.0 * cross)
    return math.sqrt(max(w2sq, 0.0))


def kl_floor(d: int, N: int) -> float:
    """Expected KL(N(mean̂, Σ̂) ‖ N(m, Σ)) of N exact samples, to leading order: d/(2N) + d(d+1)/(4N)."""
    d, N = check_positive_int("d", d), check_positive_int("N", N)
    return d / (2.0 * N) + d * (d + 1) / (4.0 * N)


def gaussian_quality(samples, mean, cov) -> dict:
    """Generation quality from sample moments against the true Gaussian N(mean, cov) (docs/theory.md §5).

    Returns KL(N(mean̂, Σ̂) ‖ N(mean, cov)), W₂ between the two Gaussians, the relative Frobenius
    error of Σ̂, ‖mean̂ - mean‖, and ``kl_floor`` — what exact samples of the same size give.
    """
    m_hat, C_hat = sample_moments(samples)
    mean, cov = _check_gaussian(mean, cov, m_hat.size)
    N = np.asarray(samples).shape[0]
    return {"kl": gaussian_kl(m_hat, C_hat, mean, cov),
            "w2": wasserstein2_gaussian(m_hat, C_hat, mean, cov),
            "cov_rel_error": float(np.linalg.norm(C_hat - cov) / np.linalg.norm(cov)),
            "mean_error": float(np.linalg.norm(m_hat - mean)),
            "kl_floor": kl_floor(m_hat.size, N), "N": int(N)}


# ----------------------------------------------------------------------------- EMM and early stopping

def emm(n_values, fmem_table, eps: float = 0.1) -> np.ndarray:
    """``EMM_ε(τ) = max{n : f_mem(n, τ) ≥ 1 - ε}`` per τ (docs/theory.md §5); 0 where no n qualifies.

    Args:
        n_values: (M,) training-set sizes.
        fmem_table: (M, T) mean f_mem, rows in the order of ``n_values``; a (S, M, T) array of
            seeds is averaged over its first axis (E f_mem).
        eps: tolerance ε ∈ (0, 1).
    """
    n = np.asarray(n_values, dtype=np.float64).reshape(-1)
    F = np.asarray(fmem_table, dtype=np.float64)
    if F.ndim == 3:
        F = F.mean(axis=0)
    if F.ndim != 2 or F.shape[0] != n.size:
        raise ValueError(f"fmem_table must be (len(n_values)={n.size}, T), got shape {F.shape}")
    check_fraction("eps", eps)
    ok = F >= 1.0 - eps
    return np.max(np.where(ok, n[:, None], 0.0), axis=0)


def emm_interpolated(n_values, fmem_table, eps: float = 0.1) -> np.ndarray:
    """EMM_ε with the crossing of f_mem = 1 - ε located by linear interpolation in log n (nan if none)."""
    n = np.asarray(n_values, dtype=np.float64).reshape(-1)
    order = np.argsort(n)
    n = n[order]
    F = np.asarray(fmem_table, dtype=np.float64)
    F = (F.mean(axis=0) if F.ndim == 3 else F)[order]
    level = 1.0 - eps
    out = np.full(F.shape[1], np.nan)
    for j in range(F.shape[1]):
        col = F[:, j]
        above = np.nonzero(col >= level)[0]
        if above.size == 0:
            continue
        i = above[-1]
        if i == n.size - 1:
            out[j] = n[i]
            continue
        f0, f1 = col[i], col[i + 1]
        w = (f0 - level) / (f0 - f1) if f0 != f1 else 0.0
        out[j] = math.exp(math.log(n[i]) + w * (math.log(n[i + 1]) - math.log(n[i])))
    return out


def crossing_time(taus, values, level: float) -> float:
    """First τ where ``values`` (rising in τ) reaches ``level``, interpolated linearly in log τ (nan if never)."""
    tau = np.asarray(taus, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if tau.shape != v.shape or tau.ndim != 1:
        raise ValueError("taus and values must be 1-D arrays of the same length")
    hit = np.nonzero(v >= level)[0]
    if hit.size == 0:
        return float("nan")
    i = hit[0]
    if i == 0 or not np.isfinite(tau[i]) or tau[i - 1] <= 0:
        return float(tau[i])
    w = (level - v[i - 1]) / (v[i] - v[i - 1])
    return float(math.exp(math.log(tau[i - 1]) + w * (math.log(tau[i]) - math.log(tau[i - 1]))))


def best_stopping_time(taus, quality, fmem, f_max: float = 0.1) -> int:
    """Index of the best-in-hindsight τ: the best (smallest) quality among τ with f_mem ≤ f_max.

    If no τ has f_mem ≤ f_max, the τ with the smallest f_mem is returned.
    """
    tau = np.asarray(taus, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    f = np.asarray(fmem, dtype=np.float64)
    if not (tau.shape == q.shape == f.shape) or tau.ndim != 1 or tau.size == 0:
        raise ValueError("taus, quality and fmem must be non-empty 1-D arrays of the same length")
    ok = (f <= f_max) & np.isfinite(q)
    if not np.any(ok):
        return int(np.argmin(f))
    return int(np.argmin(np.where(ok, q, np.inf)))


def calibrate_early_stopping(n: int, tau_best: float) -> float:
    """Slope ``c = τ*(n)/n`` of the early-stopping rule τ_stop = c·n (docs/theory.md §5), from one (smallest) n."""
    n = check_positive("n", n)
    tau_best = check_positive("tau_best", tau_best)
    return tau_best / n


def early_stopping_times(c: float, n_values) -> np.ndarray:
    """τ_stop = c·n for each n (docs/theory.md §5)."""
    c = check_positive("c", c)
    n = np.asarray(n_values, dtype=np.float64)
    if np.any(n <= 0):
        raise ValueError("n_values must be positive")
    return c * n
