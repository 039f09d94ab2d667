"""The sweep (rfdiff.sweep.run_sweep): a Dask LocalCluster vs serial, failures, retries, interrupts, resume."""
import contextlib
import os
import socket
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

pytest.importorskip("distributed")

# sweep_units lives in tests/helpers, which the pytest configuration puts on sys.path (``pythonpath``);
# LocalCluster workers inherit sys.path.
HELPERS = Path(__file__).resolve().parents[1] / "helpers"
if str(HELPERS) not in sys.path:
    sys.path.insert(0, str(HELPERS))

import sweep_units as su  # noqa: E402  (workers import it by this name)
from sweep_units import assert_same, no_temp_files  # noqa: E402

from rfdiff import sweep  # noqa: E402
from rfdiff.cache import Cache  # noqa: E402
from rfdiff_cli.cluster import ClusterSpec  # noqa: E402


def local(n_workers: int):
    """The command line's LocalCluster (one BLAS/XLA thread per worker), started on first use."""
    return ClusterSpec(workers=n_workers).client()


def test_local_cluster_bit_identical_to_serial_and_cached(tmp_path):
    units = [su.CurvesUnit(seed=s) for s in range(4)]
    ref = sweep.run_sweep(su.curves_unit, units, cache=Cache(tmp_path / "serial"))
    calls = []
    with local(2) as client:
        rep = sweep.run_sweep(su.curves_unit, units, cache=Cache(tmp_path / "dask"), client=client,
                              progress=lambda *a: calls.append(a))
    assert rep.ok and ref.ok and rep.backend.startswith("tcp://127.0.0.1:") and rep.n_workers == 2
    assert (rep.n_computed, rep.n_loaded) == (4, 0) and all(r > 0 for r in rep.runtimes)
    assert calls == [(i, 4) for i in range(1, 5)]
    for a, b in zip(ref.results, rep.results):
        assert_same(a, b)
    assert rep.kind == "sweep_units.curves_unit" and rep.keys == ref.keys
    # every entry in the manifest, written by a worker process of this host
    man = sweep.read_manifest(tmp_path / "dask")
    assert sorted(m["key"] for m in man) == sorted(rep.keys)
    assert all(m["complete"] and m["worker"].startswith("tcp://127.0.0.1:") and m["pid"] != os.getpid() for m in man)
    assert {m["unit"]["seed"] for m in man} == {0, 1, 2, 3} and all(m["runtime_s"] > 0 for m in man)
    # a second run loads everything and starts no cluster
    with local(2) as client:
        again = sweep.run_sweep(su.curves_unit, units, cache=Cache(tmp_path / "dask"), client=client)
        assert client._client is None
    assert (again.n_computed, again.n_loaded, again.backend) == (0, 4, "cache")
    assert again.runtimes == [None] * 4
    for a, b in zip(ref.results, again.results):
        assert_same(a, b)
    assert no_temp_files(tmp_path)


def test_cache_reload_and_truncated_entry_recomputed(tmp_path):
    units = [su.CurvesUnit(seed=s) for s in (5, 6, 7)] + [su.CurvesUnit(seed=5)]  # a duplicate: computed once
    cache = Cache(tmp_path, "curves")
    first = sweep.run_sweep(su.curves_unit, units, cache=cache)
    assert (first.n_computed, first.n_loaded) == (4, 0) and first.keys[0] == first.keys[3]
    assert len(list((tmp_path / "curves").glob("*.npz"))) == 3
    assert first.results[3] is first.results[0]
    second = sweep.run_sweep(su.curves_unit, units, cache=cache)
    assert (second.n_computed, second.n_loaded) == (0, 4)
    npz = tmp_path / "curves" / f"{first.keys[1]}.npz"
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    third = sweep.run_sweep(su.curves_unit, units, cache=cache)
    assert (third.n_computed, third.n_loaded) == (1, 3) and third.runtimes[1] is not None
    assert npz.read_bytes() == data
    for a, b in zip(first.results, third.results):
        assert_same(a, b)
    forced = sweep.run_sweep(su.curves_unit, units[:1], cache=Cache(tmp_path, "curves", recompute=True))
    assert (forced.n_computed, forced.n_loaded) == (1, 0)
    assert [m["key"] for m in sweep.read_manifest(tmp_path, kind="curves")].count(first.keys[0]) == 1


def test_killed_worker_is_retried(tmp_path):
    marker = tmp_path / "killed-once"
    done = [tmp_path / "m1", tmp_path / "m2"]
    for p in done:
        p.touch()  # these units do not kill
    units = [su.KillOnceUnit(str(marker), 1.0), su.KillOnceUnit(str(done[0]), 2.0), su.KillOnceUnit(str(done[1]), 3.0)]
    with local(2) as client:
        rep = sweep.run_sweep(su.kill_once_unit, units, cache=Cache(tmp_path / "cache"), client=client)
    assert marker.exists(), "the unit never ran"
    assert rep.ok and rep.results == [2.0, 4.0, 6.0] and rep.n_computed == 3
    man = {m["key"]: m for m in sweep.read_manifest(tmp_path / "cache")}
    assert len(man) == 3 and man[rep.keys[0]]["pid"] != int(marker.read_text())  # finished by another process


def test_worker_killed_beyond_allowed_failures_is_reported(tmp_path):
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), local(1) as client:
        rep = sweep.run_sweep(su.kill_once_unit, [su.KillOnceUnit(str(tmp_path / "m"), 1.0)], cache=Cache(tmp_path),
                              client=client)
    assert rep.results == [None] and rep.failures[0].error.startswith("KilledWorker")
    with pytest.raises(sweep.SweepError, match="KilledWorker"):
        rep.raise_on_failure()


def test_raising_unit_reported_others_complete(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("NPROC", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    x64_before = jax.config.jax_enable_x64
    units = [su.ToyUnit(1.0), su.ToyUnit(2.0, fail=True), su.ToyUnit(3.0), su.ToyUnit(4.0)]
    with socket.socket() as busy, warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        with contextlib.suppress(OSError):
            busy.bind(("127.0.0.1", 8787))  # the dashboard's default port, taken (if free now)
        with local(1) as client:
            rep = sweep.run_sweep(su.toy_unit, units, cache=Cache(tmp_path), client=client)
            assert client.scheduler_info()["services"]["dashboard"] != 8787  # HTTP on a free port, no dashboard
    assert not [w for w in said if "already in use" in str(w.message)]
    # the worker ran with one BLAS/XLA thread; the client's environment is as it was
    env = rep.results[0]["env"]
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == env["NPROC"] == "1"
    assert "--xla_cpu_multi_thread_eigen=false" in env["XLA_FLAGS"]
    assert os.environ["OMP_NUM_THREADS"] == "7" and "NPROC" not in os.environ
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ
    # float64 in the worker (whose global JAX setting is the default float32); the client's setting is kept
    assert rep.results[0]["jax_dtype"] == "float64" and jax.config.jax_enable_x64 == x64_before
    assert [r is None for r in rep.results] == [False, True, False, False]
    assert rep.results[2]["square"] == 9.0 and np.array_equal(rep.results[3]["powers"], [1.0, 4.0, 16.0])
    assert rep.n_computed == 3 and len(rep.failures) == 1
    f = rep.failures[0]
    assert (f.index, f.kind, f.unit) == (1, "sweep_units.toy_unit", units[1])
    assert f.error == "ValueError: toy unit asked to fail at x=2.0"
    assert "toy unit asked to fail at x=2.0" in f.traceback and "sweep_units.py" in f.traceback
    with pytest.raises(sweep.SweepError, match=r"units\[1\] = ToyUnit\(x=2.0, fail=True\)"):
        rep.raise_on_failure()
    assert len(sweep.read_manifest(tmp_path)) == 3  # failures are not cached
    # the same report serially
    ser = sweep.run_sweep(su.toy_unit, units, cache=Cache(tmp_path / "s"))
    assert [f.index for f in ser.failures] == [1] and ser.failures[0].error == f.error and ser.backend == "serial"


@pytest.mark.parametrize("kwargs, name", [
    (dict(units=su.ToyUnit(1.0)), "units"),
    (dict(units=[su.ToyUnit(1.0), su.Mutable()]), "units"),
    (dict(units=[su.ToyUnit]), "units"),
    (dict(units="abc"), "units"),
    (dict(cache="/tmp"), "cache"),
    (dict(progress=3), "progress"),
    (dict(fn=42), "fn"),
    (dict(client="tcp://127.0.0.1:8786"), "client"),
])
def test_run_sweep_validates_inputs(tmp_path, kwargs, name):
    args = {**dict(fn=su.toy_unit, units=[su.ToyUnit(1.0)], cache=Cache(tmp_path)), **kwargs}
    with pytest.raises(ValueError, match=name):
        sweep.run_sweep(args.pop("fn"), args.pop("units"), **args)
    assert not list(tmp_path.iterdir())  # nothing computed or written


def test_concurrent_sweeps_share_one_cache(tmp_path):
    import threading

    units = [su.SleepUnit(i, 0.02) for i in range(12)]
    reports = {}

    def go(name, order):
        reports[name] = sweep.run_sweep(su.sleep_unit, [units[i] for i in order], cache=Cache(tmp_path))

    threads = [threading.Thread(target=go, args=("a", range(12))),
               threading.Thread(target=go, args=("b", range(11, -1, -1)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert reports["a"].results == list(range(12)) and reports["b"].results == list(range(11, -1, -1))
    man = sweep.read_manifest(tmp_path)
    assert sorted(m["unit"]["x"] for m in man) == list(range(12)) and all(m["complete"] for m in man)
    assert not any("error" in m for m in man) and no_temp_files(tmp_path)
    again = sweep.run_sweep(su.sleep_unit, units, cache=Cache(tmp_path))
    assert again.n_loaded == 12 and again.results == list(range(12))


def test_cached_result_of_unregistered_type_loads(tmp_path, monkeypatch):
    from rfdiff import results

    units = [su.ToyUnit(3.0)]
    first = sweep.run_sweep(su.pair_unit, units, cache=Cache(tmp_path))
    monkeypatch.delitem(results._REGISTRY, "sweep_units.Pair")  # as in a fresh client process
    again = sweep.run_sweep(su.pair_unit, units, cache=Cache(tmp_path))
    assert (again.n_loaded, again.n_computed) == (1, 0)
    assert isinstance(again.results[0], su.Pair) and again.results[0].square == first.results[0].square == 9.0


def test_interrupt_serial_leaves_no_partial_files(tmp_path):
    def stop(done, total):
        if done == 2:
            raise KeyboardInterrupt

    units = [su.ToyUnit(float(x)) for x in range(5)]
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(su.toy_unit, units, cache=Cache(tmp_path), progress=stop)
    assert len(sweep.read_manifest(tmp_path)) == 2 and no_temp_files(tmp_path)
    rep = sweep.run_sweep(su.toy_unit, units, cache=Cache(tmp_path))
    assert (rep.n_loaded, rep.n_computed) == (2, 3)


def test_interrupt_cancels_and_closes_local_cluster(tmp_path):
    psutil = pytest.importorskip("psutil")

    def stop(done, total):
        raise KeyboardInterrupt

    markers = tmp_path / "markers"
    markers.mkdir()
    units = [su.SleepUnit(0, 0.0)] + [su.SleepUnit(i, 30.0, str(markers)) for i in range(1, 4)]
    with pytest.raises(KeyboardInterrupt), local(2) as client:
        sweep.run_sweep(su.sleep_unit, units, cache=Cache(tmp_path / "cache"), client=client, progress=stop)
    # the running units were cancelled, not waited for: none of them reached its end marker
    assert list(markers.iterdir()) == []
    tmp_path = tmp_path / "cache"
    assert [m["unit"]["x"] for m in sweep.read_manifest(tmp_path)] == [0] and no_temp_files(tmp_path)
    time.sleep(0.5)
    alive = [p for p in psutil.Process().children(recursive=True)
             if p.is_running() and p.status() != "zombie" and "spawn_main" in " ".join(p.cmdline())]
    assert not alive, alive
