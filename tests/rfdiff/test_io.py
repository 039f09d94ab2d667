"""Atomic writes, JSON conversion, JSON/NPZ saving, cache folder and run metadata (rfdiff.io)."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff import io


def _leftovers(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith(".tmp"))


def test_atomic_write_no_overwrite_refuses_existing_file(tmp_path):
    """overwrite=False: an existing file is kept untouched, FileExistsError, no temporary file left behind."""
    path = tmp_path / "result.json"
    path.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        io.atomic_write(path, lambda fh: fh.write(b"new"), overwrite=False)
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []
    # a fresh path is written, in a folder created on the way
    fresh = tmp_path / "sub" / "dir" / "r.bin"
    io.atomic_write(fresh, lambda fh: fh.write(b"abc"), overwrite=False)
    assert fresh.read_bytes() == b"abc"
    assert _leftovers(fresh.parent) == []


def test_atomic_write_overwrites_and_cleans_up_on_error(tmp_path):
    path = tmp_path / "r.txt"
    io.atomic_write(path, lambda fh: fh.write(b"one"))
    io.atomic_write(path, lambda fh: fh.write(b"two"))
    assert path.read_bytes() == b"two"

    def failing(fh):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    for overwrite in (True, False):
        with pytest.raises(RuntimeError, match="disk full"):
            io.atomic_write(path, failing, overwrite=overwrite)
        assert path.read_bytes() == b"two"             # the old content survives a failed write
        with pytest.raises(RuntimeError):
            io.atomic_write(tmp_path / "never.txt", failing, overwrite=overwrite)
        assert not (tmp_path / "never.txt").exists()
    assert _leftovers(tmp_path) == []


def test_atomic_write_file_mode_follows_umask(tmp_path):
    """mkstemp makes 0600 files; results get the ordinary 0666 & ~umask."""
    old = os.umask(0o027)
    try:
        for overwrite in (True, False):
            path = tmp_path / f"m{overwrite}.txt"
            io.atomic_write(path, lambda fh: fh.write(b"x"), overwrite=overwrite)
            assert path.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_to_jsonable_converts_numpy_and_jax_values():
    obj = {1: np.float32(0.5), "arr": np.array([[1, 2], [3, 4]], dtype=np.int64), "nan": float("nan"),
           "vals": (np.float64(np.inf), -np.inf, np.float64(2.25)), "flag": np.bool_(True),
           "nested": {"j": jnp.asarray([1.5, jnp.nan]), "i": np.int32(-7)}, "s": "text", "none": None}
    out = io.to_jsonable(obj)
    assert out == {"1": 0.5, "arr": [[1, 2], [3, 4]], "nan": None, "vals": [None, None, 2.25], "flag": True,
                   "nested": {"j": [1.5, None], "i": -7}, "s": "text", "none": None}
    assert type(out["flag"]) is bool and type(out["nested"]["i"]) is int and type(out["arr"][0][0]) is int
    assert type(out["1"]) is float
    json.dumps(out, allow_nan=False)     # strict JSON: no NaN/Infinity tokens


def test_save_json_and_npz_round_trip(tmp_path):
    obj = {"b": [np.float64(1.0) / 3, 2], "a": {"x": np.arange(3)}, "inf": np.inf}
    p = io.save_json(tmp_path / "o" / "r.json", obj)
    text = p.read_text()
    assert text.endswith("\n") and text.index('"a"') < text.index('"b"')     # sorted keys
    assert json.loads(text) == {"a": {"x": [0, 1, 2]}, "b": [1 / 3, 2], "inf": None}
    arrays = {"f": np.linspace(0, 1, 7), "i": np.arange(6, dtype=np.int32).reshape(2, 3), "j": jnp.ones(2)}
    q = io.save_npz(tmp_path / "r.npz", arrays)
    with np.load(q) as z:
        assert set(z.files) == {"f", "i", "j"}
        np.testing.assert_array_equal(z["f"], arrays["f"])
        assert z["i"].dtype == np.int32 and z["i"].shape == (2, 3)
        np.testing.assert_array_equal(z["j"], [1.0, 1.0])
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "o") == []


def test_cache_folder_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("RFDIFF_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert io.cache_folder() == tmp_path / "explicit"
    monkeypatch.setenv("RFDIFF_CACHE", "")
    assert io.cache_folder() == tmp_path / "xdg" / "rfdiff"
    monkeypatch.delenv("RFDIFF_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert io.cache_folder() == tmp_path / "home" / ".cache" / "rfdiff"


def test_run_metadata_and_memory():
    meta = io.run_metadata()
    assert meta["versions"]["numpy"] == np.__version__
    assert meta["x64_global"] is bool(jax.config.jax_enable_x64)
    assert meta["cpu_count"] == os.cpu_count() and meta["jax_devices"]
    json.dumps(io.to_jsonable(meta))
    rss = io.peak_rss_bytes()
    assert 10 * 2**20 < rss < 2**40              # ru_maxrss is KiB: a JAX process holds far more than 10 MiB
