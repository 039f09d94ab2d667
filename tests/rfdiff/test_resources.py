"""What the machine offers and what a run used (rfdiff.resources)."""
import jax

from rfdiff import resources


def test_peak_rss_and_device_memory():
    rss = resources.peak_rss_bytes()
    assert 10 * 2**20 < rss < 2**40              # ru_maxrss is KiB: a JAX process holds far more than 10 MiB
    mem = resources.device_memory()
    assert (mem is None) == (jax.devices()[0].platform == "cpu") or isinstance(mem, dict)
