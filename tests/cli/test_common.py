"""What the commands share (rfdiff_cli.common): the compilation-cache folder and its fallback, run provenance."""
import json
import os

import numpy as np

from rfdiff_cli import common


def test_cache_folder_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("RFDIFF_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert common.cache_folder() == tmp_path / "explicit"
    monkeypatch.setenv("RFDIFF_CACHE", "")
    assert common.cache_folder() == tmp_path / "xdg" / "rfdiff"
    monkeypatch.delenv("RFDIFF_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert common.cache_folder() == tmp_path / "home" / ".cache" / "rfdiff"


def test_an_unusable_cache_folder_gives_one_warning_and_no_cache(monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("RFDIFF_CACHE", str(blocker))
    assert common.enable_compilation_cache() is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: no persistent compilation cache")


def test_run_metadata():
    import jax
    meta = common.run_metadata()
    assert meta["versions"]["numpy"] == np.__version__
    assert meta["x64_global"] is bool(jax.config.jax_enable_x64)
    assert meta["cpu_count"] == os.cpu_count() and meta["jax_devices"]
    json.dumps(meta)
