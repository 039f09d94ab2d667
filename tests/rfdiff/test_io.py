"""Atomic writes, groups of files committed as one result, JSON conversion and JSON/NPZ saving (rfdiff.io)."""
import errno
import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def _pair(tmp_path, npz=b"arrays", js=b"marker"):
    return {tmp_path / "r.npz": lambda fh: fh.write(npz), tmp_path / "r.json": lambda fh: fh.write(js)}


def test_commit_cut_short_is_not_a_result_and_stale_temps_go(tmp_path, monkeypatch):
    """A commit killed between its two renames leaves an NPZ without its JSON: the next commit (without
    overwrite) publishes over it, and the temporary files of the dead writer are removed; a live writer's stay."""
    real_link, calls = os.link, []

    def link_then_die(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt          # as a kill between the NPZ and the JSON
        return real_link(src, dst)

    monkeypatch.setattr(os, "link", link_then_die)
    with pytest.raises(KeyboardInterrupt):
        io.commit(_pair(tmp_path), overwrite=False)
    monkeypatch.setattr(os, "link", real_link)
    assert not (tmp_path / "r.json").exists()
    (tmp_path / "r.npz").write_bytes(b"orphan")                     # what a kill -9 leaves
    dead = io.temp_path(tmp_path / "r.json", pid=_dead_pid())
    live = io.temp_path(tmp_path / "r.json")
    dead.write_bytes(b"x")
    live.write_bytes(b"x")
    io.commit(_pair(tmp_path, b"new arrays"), overwrite=False)
    assert (tmp_path / "r.npz").read_bytes() == b"new arrays" and (tmp_path / "r.json").read_bytes() == b"marker"
    assert not dead.exists() and live.exists()
    with pytest.raises(FileExistsError):                               # a committed pair is a result
        io.commit(_pair(tmp_path, b"other"), overwrite=False)
    assert (tmp_path / "r.npz").read_bytes() == b"new arrays"
    live.unlink()
    assert _leftovers(tmp_path) == []


def test_commit_on_a_full_disk_publishes_nothing_and_names_the_file(tmp_path):
    def full(fh):
        fh.write(b"part")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as exc:
        io.commit({tmp_path / "r.npz": lambda fh: fh.write(b"a"), tmp_path / "r.json": full})
    assert io.is_no_space(exc.value) and exc.value.filename == str(tmp_path / "r.json")
    assert os.listdir(tmp_path) == []


def test_commit_refuses_non_regular_targets(tmp_path):
    target = tmp_path / "target.csv"
    target.write_bytes(b"keep")
    (tmp_path / "link.csv").symlink_to(target)
    (tmp_path / "folder.csv").mkdir()
    for name, word in (("link.csv", "symbolic link"), ("folder.csv", "folder")):
        for overwrite in (True, False):
            with pytest.raises(ValueError, match=word):
                io.atomic_write(tmp_path / name, lambda fh: fh.write(b"x"), overwrite=overwrite)
    assert (tmp_path / "link.csv").is_symlink() and target.read_bytes() == b"keep"
    if os.path.exists("/dev/null"):
        with pytest.raises(ValueError, match="device"):
            io.atomic_write("/dev/null", lambda fh: fh.write(b"x"))
        assert not os.path.isfile("/dev/null")
    assert _leftovers(tmp_path) == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(length=st.integers(1, 300), suffix=st.sampled_from([".json", ".npz", ".png"]))
def test_names_checked_up_front_are_the_names_a_commit_can_create(tmp_path, length, suffix):
    """check_names accepts a name exactly when the commit of it (temporary file included) succeeds."""
    name = "a" * length + suffix
    try:
        io.check_names(tmp_path, [name])
    except ValueError as err:
        assert str(err).startswith("name:") and len(name.encode()) + io.TEMP_EXTRA_BYTES > io.name_max(tmp_path)
        return
    io.atomic_write(tmp_path / name, lambda fh: fh.write(b"x"))
    assert (tmp_path / name).read_bytes() == b"x"
    (tmp_path / name).unlink()


def test_a_temp_of_another_host_is_kept_until_it_is_a_day_old(tmp_path):
    """On a shared file system a pid says nothing about another host's writer: its temp file is kept for a day."""
    mine = io.temp_path(tmp_path / "r.json").name
    tag = "0000" if mine[len(".r.json."):][:4] != "0000" else "1111"
    other = tmp_path / f".r.json.{tag}1-0123abcd.tmp"
    other.write_bytes(b"x")
    assert io.remove_stale_temps(tmp_path / "r.json") == [] and other.exists()
    old = os.stat(other).st_mtime - io.STALE_AFTER_S - 1
    os.utime(other, (old, old))
    assert io.remove_stale_temps(tmp_path / "r.json") == [other] and not other.exists()
