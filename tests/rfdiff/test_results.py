"""Typed results and their JSON + NPZ form (rfdiff.results)."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfdiff import results
from rfdiff.results import CorruptResult, Curves, Spectrum, Thresholds, Timescales

fast = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(gen=st.floats(allow_nan=True), mem=st.floats(allow_nan=True), ab=st.floats(allow_nan=True))
def test_thresholds_are_valid_or_refused_by_name(gen, mem, ab):
    try:
        results.Thresholds(gen, mem, ab)
    except ValueError as err:
        assert str(err).split()[0] in ("gen_frac", "mem_frac", "mem_abs")


def test_curves_gap_access_and_shape_check():
    tau = np.logspace(0, 2, 5)
    c = Curves(tau, np.ones(5), np.full(5, 3.0), extra={"objective": np.zeros(5)})
    np.testing.assert_array_equal(c.gen_gap, np.full(5, 2.0))
    assert c.keys() == ["tau", "train_loss", "test_loss", "gen_gap", "objective"]
    assert "objective" in c and "score_error" not in c and c["objective"].dtype == np.float64
    assert c.final()["test_loss"] == 3.0
    with pytest.raises(KeyError):
        c["score_error"]
    with pytest.raises(ValueError, match="train_loss"):
        Curves(tau, np.ones(4))


def test_spectrum_quantile_of_exact_eigenvalues():
    s = Spectrum.from_eigenvalues([3.0, 1.0, 2.0, 4.0])
    assert s.nodes.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert [s.quantile((k - 0.5) / 4) for k in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, 4.0]
    assert math.isnan(s.quantile(1.5))


def test_save_load_roundtrip(tmp_path):
    tau = np.logspace(-1, 3, 7)
    obj = {"curves": Curves(tau, np.linspace(1, 0.5, 7), method="m"), "spectrum": Spectrum([1.0, 2.0], [0.25, 0.75]),
           "ts": Timescales(tau_gen=3.0, tau_mem=math.inf), "tuple": (1, "a"), 2: [np.arange(3), None, math.nan]}
    files = results.save(obj, tmp_path / "r", meta={"note": "x"})
    assert [f.name for f in files] == ["r.json", "r.npz"]
    back, meta = results.load(tmp_path / "r", with_meta=True)
    assert meta == {"note": "x"}
    np.testing.assert_array_equal(back["curves"].train_loss, obj["curves"].train_loss)
    assert back["curves"].method == "m" and isinstance(back["spectrum"], Spectrum)
    assert back["ts"].tau_mem == math.inf and back["ts"].thresholds == Thresholds()
    assert back["tuple"] == (1, "a") and back[2][0].tolist() == [0, 1, 2] and math.isnan(back[2][2])
    (tmp_path / "r.npz").write_bytes(b"truncated")
    with pytest.raises(CorruptResult):
        results.load(tmp_path / "r")
