"""What the machine offers and what a run used: the accelerator's memory and this process's peak memory."""
from __future__ import annotations

import resource

__all__ = ["device_memory", "gemm_rate", "peak_rss_bytes"]


def device_memory() -> dict | None:
    """Peak and limit of the default accelerator's memory in bytes (None on CPU, where peak RSS applies)."""
    import jax
    dev = jax.devices()[0]
    stats = dev.memory_stats() if dev.platform != "cpu" else None
    if not stats:
        return None
    return {k: int(stats[k]) for k in ("peak_bytes_in_use", "bytes_limit", "bytes_in_use") if k in stats}


def peak_rss_bytes() -> int:
    """Peak resident memory of this process in bytes (Linux ru_maxrss is in KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def gemm_rate(size: int = 2048, repeats: int = 3) -> float:
    """float64 GEMM rate of this machine now (flop/s): the best of ``repeats`` (size × size)·(size × size/4) products.

    The floor a route's operation count is priced at (docs/theory.md §3.4); about 40 ms at the default size.
    """
    import time

    import numpy as np

    if isinstance(size, bool) or not isinstance(size, int) or size < 64:
        raise ValueError(f"size must be an integer >= 64, got {size!r}")
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((size, size)), rng.standard_normal((size, size // 4))
    best = float("inf")
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        A @ B
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size * size * (size // 4) / max(best, 1e-9)
