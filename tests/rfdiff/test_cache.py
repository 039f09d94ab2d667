"""The unit cache (rfdiff.cache): keys over every field, misfiled or damaged entries recomputed, manifest."""
import dataclasses
import shutil

import pytest
import sweep_units as su

from rfdiff import cache as C
from rfdiff import sweep
from rfdiff.model import DataSpec, RFConfig


def test_unit_key_changes_with_every_field():
    base = su.CurvesUnit()
    key = C.unit_key("k", base)
    assert key == C.unit_key("k", su.CurvesUnit()) and len(key) == 32
    changes = {"d": 9, "p": 65, "n": 17, "t": 0.1000000001, "seed": 1, "n_tau": 22}
    assert set(changes) == {f.name for f in dataclasses.fields(base)}
    keys = {C.unit_key("k", dataclasses.replace(base, **{name: v})) for name, v in changes.items()}
    assert len(keys) == len(changes) and key not in keys
    assert C.unit_key("other", base) != key
    assert C.unit_key("k", dataclasses.replace(base, t=1)) != C.unit_key("k", dataclasses.replace(base, t=1.0))
    # nested configs: a field of a field counts
    cfg = RFConfig(d=8, p=64, n=16)
    k_cfg = C.unit_key("k", cfg)
    assert C.unit_key("k", RFConfig(d=8, p=64, n=16)) == k_cfg
    assert C.unit_key("k", dataclasses.replace(cfg, data=DataSpec(sigma_x=1.5))) != k_cfg
    assert C.unit_key("k", dataclasses.replace(cfg, seed=3)) != k_cfg


def test_unit_key_depends_on_cache_version(monkeypatch):
    k0 = C.unit_key("k", su.ToyUnit(1.0))
    monkeypatch.setattr(C, "CACHE_VERSION", C.CACHE_VERSION + 1)
    assert C.unit_key("k", su.ToyUnit(1.0)) != k0


def test_entry_filed_under_another_key_is_recomputed(tmp_path):
    """An entry whose recorded key (or kind) is not its file name is not served: it is recomputed."""
    units = [su.ToyUnit(2.0), su.ToyUnit(3.0)]
    first = sweep.run_sweep(su.toy_unit, units, cache=C.Cache(tmp_path, "toys"))
    a, b = (tmp_path / "toys" / k for k in first.keys)
    for suffix in (".json", ".npz"):  # x = 2's entry copied over x = 3's
        shutil.copyfile(f"{a}{suffix}", f"{b}{suffix}")
    again = sweep.run_sweep(su.toy_unit, units, cache=C.Cache(tmp_path, "toys"))
    assert (again.n_loaded, again.n_computed) == (1, 1)
    assert [r["square"] for r in again.results] == [4.0, 9.0]
    # the same across kinds: an entry of "toys" moved into "other" under its own name
    (tmp_path / "other").mkdir()
    for suffix in (".json", ".npz"):
        shutil.copyfile(f"{a}{suffix}", tmp_path / "other" / f"{C.unit_key('other', units[0])}{suffix}")
    moved = sweep.run_sweep(su.toy_unit, units[:1], cache=C.Cache(tmp_path, "other"))
    assert (moved.n_loaded, moved.n_computed) == (0, 1)


@pytest.mark.parametrize("kwargs, name", [
    (dict(root=None), "cache_dir"), (dict(root=""), "cache_dir"), (dict(kind="../up"), "kind"),
    (dict(kind=3), "kind"), (dict(recompute="yes"), "recompute"),
])
def test_cache_validates(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        C.Cache(**{"root": tmp_path, **kwargs})


def test_unwritable_cache_folder_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="cache_dir"):
        sweep.run_sweep(su.toy_unit, [su.ToyUnit(1.0)], cache=C.Cache(blocker / "cache"))


def test_manifest_reports_unreadable_entries(tmp_path):
    rep = sweep.run_sweep(su.toy_unit, [su.ToyUnit(1.0)], cache=C.Cache(tmp_path, "toys"))
    (tmp_path / "toys" / "broken.json").write_text("{not json")
    man = C.read_manifest(tmp_path)
    assert [m["key"] for m in man if "error" not in m] == rep.keys and [m["key"] for m in man if "error" in m] == ["broken"]
    assert C.read_manifest(tmp_path, kind="none") == []
    with pytest.raises(ValueError, match="cache_dir"):
        C.read_manifest(tmp_path / "missing")
    with pytest.raises(ValueError, match="kind"):
        C.read_manifest(tmp_path, kind="../x")


def test_entry_of_an_older_rfdiff_loads_quietly(tmp_path):
    """An entry without a content hash (written before results recorded one) is served, with no warning per entry."""
    import json
    import warnings

    first = sweep.run_sweep(su.toy_unit, [su.ToyUnit(2.0)], cache=C.Cache(tmp_path, "toys"))
    js = tmp_path / "toys" / f"{first.keys[0]}.json"
    doc = json.loads(js.read_text())
    js.write_text(json.dumps({"result": doc["result"], "meta": doc["meta"]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = sweep.run_sweep(su.toy_unit, [su.ToyUnit(2.0)], cache=C.Cache(tmp_path, "toys"))
    assert (again.n_loaded, again.results[0]["square"]) == (1, 4.0)
