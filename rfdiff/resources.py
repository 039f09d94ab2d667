"""What the machine offers and what a run used: the accelerator's memory and this process's peak memory."""
from __future__ import annotations

import resource

__all__ = ["device_memory", "peak_rss_bytes"]


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
