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


# ---------------------------------------------------------------- a result is a consistent pair

arrays_st = st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=12).map(np.asarray)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=arrays_st, b=arrays_st, t_a=st.floats(0.01, 1), t_b=st.floats(1.5, 3))
def test_json_paired_with_another_runs_npz_is_refused(tmp_path, a, b, t_a, t_b):
    results.save({"t": t_a, "curve": a}, tmp_path / "a")
    results.save({"t": t_b, "curve": b}, tmp_path / "b")
    (tmp_path / "b.npz").replace(tmp_path / "a.npz")
    if np.array_equal(a, b):
        assert results.load(tmp_path / "a")["t"] == t_a           # the same arrays: the pair is consistent
        return
    with pytest.raises(CorruptResult, match="a.npz|content hash"):
        results.load(tmp_path / "a")


def _edit(path, fn):
    import json
    doc = json.loads(path.read_text())
    fn(doc["result"])
    path.write_text(json.dumps(doc))


def test_edited_or_missing_fields_are_errors(tmp_path):
    ts = Timescales(tau_gen=2.0, tau_mem=30.0)
    results.save({"p": 256, "ts": ts, "x": np.arange(256.0)}, tmp_path / "r")
    assert results.load(tmp_path / "r")["ts"].tau_mem == 30.0
    _edit(tmp_path / "r.json", lambda r: r.update(p=4096))                    # p edited: the hash says so
    with pytest.raises(CorruptResult, match="content hash"):
        results.load(tmp_path / "r")
    results.save({"p": 256, "ts": ts}, tmp_path / "r")
    doc_text = (tmp_path / "r.json").read_text()
    import json
    doc = json.loads(doc_text)
    del doc["result"]["ts"]["tau_mem"]
    doc["sha256"] = results.content_hash(doc["result"], {})                   # even with a recomputed hash
    (tmp_path / "r.json").write_text(json.dumps(doc))
    with pytest.raises(CorruptResult, match="missing field.*tau_mem"):
        results.load(tmp_path / "r")
    doc = json.loads(doc_text)
    del doc["sha256"]
    (tmp_path / "r.json").write_text(json.dumps(doc))
    with pytest.raises(CorruptResult, match="sha256"):
        results.load(tmp_path / "r")


def test_array_shapes_are_checked_against_the_json(tmp_path):
    results.save({"x": np.arange(6.0)}, tmp_path / "r")
    np.savez(tmp_path / "r.npz", x=np.arange(4.0))
    with pytest.raises(CorruptResult, match=r"shape \(4,\).*shape \(6,\)"):
        results.load(tmp_path / "r")


def test_types_are_recorded_and_resolved_explicitly(tmp_path, monkeypatch):
    """A type outside rfdiff is imported only when already imported or named by the caller (modules=...)."""
    import sys
    (tmp_path / "h2_result_types.py").write_text(
        "import dataclasses\n@dataclasses.dataclass(frozen=True)\nclass Pair:\n    a: int\n    b: float\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import h2_result_types
    results.save(h2_result_types.Pair(1, 2.5), tmp_path / "r")
    import json
    assert json.loads((tmp_path / "r.json").read_text())["types"]["h2_result_types.Pair"] == ["h2_result_types", "Pair"]
    monkeypatch.delitem(results._REGISTRY, "h2_result_types.Pair")
    monkeypatch.delitem(sys.modules, "h2_result_types")                     # as in a fresh process
    with pytest.raises(CorruptResult, match="unknown result type 'h2_result_types.Pair'.*modules="):
        results.load(tmp_path / "r")
    assert "h2_result_types" not in sys.modules                             # the file made no code run
    assert results.load(tmp_path / "r", modules=["h2_result_types"]).b == 2.5


def test_results_module_names_no_caller():
    import inspect
    text = inspect.getsource(results)
    assert "rfdiff_cli" not in text and "rfdiff_analysis" not in text


def test_an_old_file_without_hash_loads_with_a_warning(tmp_path):
    import json
    results.save({"x": np.arange(3.0)}, tmp_path / "r")
    doc = json.loads((tmp_path / "r.json").read_text())
    (tmp_path / "r.json").write_text(json.dumps({"result": doc["result"], "meta": {}}))
    with pytest.warns(UserWarning, match="no content hash"):
        assert results.load(tmp_path / "r")["x"].tolist() == [0.0, 1.0, 2.0]
