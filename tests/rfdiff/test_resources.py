"""What the machine offers and what a run used (rfdiff.resources)."""
import jax

from rfdiff import resources


def test_peak_rss_and_device_memory():
    rss = resources.peak_rss_bytes()
    assert 10 * 2**20 < rss < 2**40              # ru_maxrss is KiB: a JAX process holds far more than 10 MiB
    mem = resources.device_memory()
    assert (mem is None) == (jax.devices()[0].platform == "cpu") or isinstance(mem, dict)


def test_gemm_rate_is_a_rate_and_checks_its_size():
    import pytest
    rate = resources.gemm_rate(256, repeats=2)
    assert 1e7 < rate < 1e14                     # flop/s of any CPU or accelerator host
    with pytest.raises(ValueError, match="^size"):
        resources.gemm_rate(8)
