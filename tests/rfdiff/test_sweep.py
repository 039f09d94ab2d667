"""The sweep engine (rfdiff.sweep): dask LocalCluster and external scheduler vs serial, cache, failures."""
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

pytest.importorskip("distributed")

# sweep_units lives in tests/helpers, which the pytest configuration puts on sys.path (``pythonpath``);
# LocalCluster workers inherit sys.path, ``dask worker`` subprocesses get it on PYTHONPATH below.
HELPERS = Path(__file__).resolve().parents[1] / "helpers"
if str(HELPERS) not in sys.path:
    sys.path.insert(0, str(HELPERS))

import sweep_units as su  # noqa: E402  (workers import it by this name)

from rfdiff import sweep  # noqa: E402
from rfdiff.model import DataSpec, RFConfig  # noqa: E402
from rfdiff.results import Curves  # noqa: E402


def assert_same(a, b):
    """Bit-identity of two results (Curves, dicts of floats/arrays, numbers)."""
    if isinstance(a, Curves):
        assert isinstance(b, Curves) and a.method == b.method
        da, db = a.as_dict(), b.as_dict()
        assert da.keys() == db.keys()
        for k in da:
            assert da[k].dtype == db[k].dtype == np.float64, k
            assert np.array_equal(da[k], db[k]), k
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    else:
        assert type(a) is type(b) and a == b


def no_temp_files(folder) -> bool:
    return not [p for p in Path(folder).rglob("*") if p.name.endswith(".tmp")]


def test_local_cluster_bit_identical_to_serial_and_cached(tmp_path):
    units = [su.CurvesUnit(seed=s) for s in range(4)]
    ref = sweep.run_sweep(su.curves_unit, units, cache_dir=tmp_path / "serial", cluster=sweep.Cluster(serial=True))
    calls = []
    rep = sweep.run_sweep(su.curves_unit, units, cache_dir=tmp_path / "dask", progress=lambda *a: calls.append(a),
                          cluster=sweep.Cluster(n_workers=2, threads_per_worker=1))
    assert rep.ok and ref.ok and rep.backend == "local" and rep.n_workers == 2
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
    again = sweep.run_sweep(su.curves_unit, units, cache_dir=tmp_path / "dask", cluster=sweep.Cluster(n_workers=2))
    assert (again.n_computed, again.n_loaded, again.backend) == (0, 4, "cache")
    assert again.runtimes == [None] * 4
    for a, b in zip(ref.results, again.results):
        assert_same(a, b)
    assert no_temp_files(tmp_path)


def test_cache_reload_and_truncated_entry_recomputed(tmp_path):
    units = [su.CurvesUnit(seed=s) for s in (5, 6, 7)] + [su.CurvesUnit(seed=5)]  # a duplicate: computed once
    serial = sweep.Cluster(serial=True)
    first = sweep.run_sweep(su.curves_unit, units, cache_dir=tmp_path, cluster=serial, kind="curves")
    assert (first.n_computed, first.n_loaded) == (4, 0) and first.keys[0] == first.keys[3]
    assert len(list((tmp_path / "curves").glob("*.npz"))) == 3
    assert first.results[3] is first.results[0]
    second = sweep.run_sweep(su.curves_unit, units, cache_dir=tmp_path, cluster=serial, kind="curves")
    assert (second.n_computed, second.n_loaded) == (0, 4)
    npz = tmp_path / "curves" / f"{first.keys[1]}.npz"
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    third = sweep.run_sweep(su.curves_unit, units, cache_dir=tmp_path, cluster=serial, kind="curves")
    assert (third.n_computed, third.n_loaded) == (1, 3) and third.runtimes[1] is not None
    assert npz.read_bytes() == data
    for a, b in zip(first.results, third.results):
        assert_same(a, b)
    forced = sweep.run_sweep(su.curves_unit, units[:1], cache_dir=tmp_path, cluster=serial, kind="curves",
                             recompute=True)
    assert (forced.n_computed, forced.n_loaded) == (1, 0)
    assert [m["key"] for m in sweep.read_manifest(tmp_path, kind="curves")].count(first.keys[0]) == 1


def test_killed_worker_is_retried(tmp_path):
    marker = tmp_path / "killed-once"
    done = [tmp_path / "m1", tmp_path / "m2"]
    for p in done:
        p.touch()  # these units do not kill
    units = [su.KillOnceUnit(str(marker), 1.0), su.KillOnceUnit(str(done[0]), 2.0), su.KillOnceUnit(str(done[1]), 3.0)]
    rep = sweep.run_sweep(su.kill_once_unit, units, cache_dir=tmp_path / "cache",
                          cluster=sweep.Cluster(n_workers=2))
    assert marker.exists(), "the unit never ran"
    assert rep.ok and rep.results == [2.0, 4.0, 6.0] and rep.n_computed == 3
    man = {m["key"]: m for m in sweep.read_manifest(tmp_path / "cache")}
    assert len(man) == 3 and man[rep.keys[0]]["pid"] != int(marker.read_text())  # finished by another process


def test_worker_killed_beyond_allowed_failures_is_reported(tmp_path):
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        rep = sweep.run_sweep(su.kill_once_unit, [su.KillOnceUnit(str(tmp_path / "m"), 1.0)], cache_dir=tmp_path,
                              cluster=sweep.Cluster(n_workers=1))
    assert rep.results == [None] and rep.failures[0].error.startswith("KilledWorker")
    with pytest.raises(sweep.SweepError, match="KilledWorker"):
        rep.raise_on_failure()


def test_raising_unit_reported_others_complete(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("NPROC", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    x64_before = jax.config.jax_enable_x64
    units = [su.ToyUnit(1.0), su.ToyUnit(2.0, fail=True), su.ToyUnit(3.0), su.ToyUnit(4.0)]
    rep = sweep.run_sweep(su.toy_unit, units, cache_dir=tmp_path, cluster=sweep.Cluster(n_workers=1))
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
    ser = sweep.run_sweep(su.toy_unit, units, cache_dir=tmp_path / "s", cluster=sweep.Cluster(serial=True))
    assert [f.index for f in ser.failures] == [1] and ser.failures[0].error == f.error


def _start(args, env, log, cwd):
    return subprocess.Popen([sys.executable, "-m", "dask", *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=cwd)


def _scheduler_address(sfile: Path, proc, timeout: float = 60.0) -> str:
    """The address the scheduler wrote to its scheduler file (waiting for a complete file)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return json.loads(sfile.read_text())["address"]
        except (OSError, ValueError, KeyError):
            assert time.monotonic() < deadline and proc.poll() is None, "the dask scheduler did not start"
            time.sleep(0.1)


def test_external_scheduler_and_env_var(tmp_path, monkeypatch):
    from distributed import Client

    pythonpath = os.pathsep.join([str(HELPERS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = dict(os.environ, PYTHONPATH=pythonpath,
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", NPROC="1")
    env.pop(sweep.SCHEDULER_ENV, None)
    sfile = tmp_path / "scheduler.json"
    procs = []
    with open(tmp_path / "dask.log", "wb") as log:
        try:
            # port 0: the scheduler takes a free port and writes its address to the scheduler file
            procs.append(_start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                 "--scheduler-file", str(sfile)], env, log, tmp_path))
            address = _scheduler_address(sfile, procs[0])
            assert address.startswith("tcp://127.0.0.1:")
            for i in range(2):
                procs.append(_start(["worker", address, "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
                                     "--name", f"w{i}"], env, log, tmp_path))
            with Client(address, set_as_default=False, timeout=30) as c:
                c.wait_for_workers(2, timeout=60)
            units = [su.CurvesUnit(seed=s) for s in range(2)]
            rep = sweep.run_sweep(su.curves_unit, units, cache_dir=tmp_path / "a",
                                  cluster=sweep.Cluster(scheduler=address))
            assert rep.ok and rep.backend == address and rep.n_workers == 2 and rep.n_computed == 2
            assert os.getpid() not in {m["pid"] for m in sweep.read_manifest(tmp_path / "a")}
            ser = sweep.run_sweep(su.curves_unit, units, cache_dir=tmp_path / "s", cluster=sweep.Cluster(serial=True))
            for a, b in zip(rep.results, ser.results):
                assert_same(a, b)
            monkeypatch.setenv(sweep.SCHEDULER_ENV, address)
            toys = [su.ToyUnit(float(x)) for x in range(4)]
            via_env = sweep.run_sweep(su.toy_unit, toys, cache_dir=tmp_path / "b")
            assert via_env.ok and via_env.backend == address and via_env.n_computed == 4
            assert [r["square"] for r in via_env.results] == [0.0, 1.0, 4.0, 9.0]
            assert via_env.results[0]["env"]["NPROC"] == "1"  # set by whoever started the workers
            ser = sweep.run_sweep(su.toy_unit, toys, cache_dir=tmp_path / "c", cluster=sweep.Cluster(serial=True))
            assert ser.backend == "serial"  # serial ignores RFDIFF_SCHEDULER
        finally:  # workers first (all at once), then the scheduler
            for group in (procs[1:], procs[:1]):
                for p in group:
                    p.terminate()
                for p in group:
                    try:
                        p.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()


def test_unit_key_changes_with_every_field():
    base = su.CurvesUnit()
    key = sweep.unit_key("k", base)
    assert key == sweep.unit_key("k", su.CurvesUnit()) and len(key) == 32
    changes = {"d": 9, "p": 65, "n": 17, "t": 0.1000000001, "seed": 1, "n_tau": 22}
    assert set(changes) == {f.name for f in dataclasses.fields(base)}
    keys = {sweep.unit_key("k", dataclasses.replace(base, **{name: v})) for name, v in changes.items()}
    assert len(keys) == len(changes) and key not in keys
    assert sweep.unit_key("other", base) != key
    assert sweep.unit_key("k", dataclasses.replace(base, t=1)) != sweep.unit_key("k", dataclasses.replace(base, t=1.0))
    # nested configs: a field of a field counts
    cfg = RFConfig(d=8, p=64, n=16)
    k_cfg = sweep.unit_key("k", cfg)
    assert sweep.unit_key("k", RFConfig(d=8, p=64, n=16)) == k_cfg
    assert sweep.unit_key("k", dataclasses.replace(cfg, data=DataSpec(sigma_x=1.5))) != k_cfg
    assert sweep.unit_key("k", dataclasses.replace(cfg, seed=3)) != k_cfg


def test_unit_key_depends_on_cache_version(monkeypatch):
    k0 = sweep.unit_key("k", su.ToyUnit(1.0))
    monkeypatch.setattr(sweep, "CACHE_VERSION", sweep.CACHE_VERSION + 1)
    assert sweep.unit_key("k", su.ToyUnit(1.0)) != k0


@dataclasses.dataclass
class _Mutable:
    x: int = 0


@pytest.mark.parametrize("kwargs, name", [
    (dict(units=su.ToyUnit(1.0)), "units"),
    (dict(units=[su.ToyUnit(1.0), _Mutable()]), "units"),
    (dict(units=[su.ToyUnit]), "units"),
    (dict(units="abc"), "units"),
    (dict(cache_dir=None), "cache_dir"),
    (dict(cache_dir="/proc/no-such-folder/cache"), "cache_dir"),
    (dict(kind="../up"), "kind"),
    (dict(progress=3), "progress"),
    (dict(recompute="yes"), "recompute"),
    (dict(fn=42), "fn"),
    (dict(cluster="local"), "cluster"),
])
def test_run_sweep_validates_inputs(tmp_path, kwargs, name):
    args = {**dict(fn=su.toy_unit, units=[su.ToyUnit(1.0)], cache_dir=tmp_path), **kwargs}
    with pytest.raises(ValueError, match=name):
        sweep.run_sweep(args.pop("fn"), args.pop("units"), **args)


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_workers=0), "n_workers"), (dict(n_workers=1.5), "n_workers"),
    (dict(threads_per_worker=0), "threads_per_worker"), (dict(threads_per_worker=None), "threads_per_worker"), (dict(scheduler="tcp://host:99999"), "scheduler"),
    (dict(scheduler="http//x y"), "scheduler"), (dict(scheduler="foo://host:1"), "scheduler"),
    (dict(scheduler=8786), "scheduler"), (dict(serial="no"), "serial"),
])
def test_cluster_validates(kwargs, name):
    with pytest.raises(ValueError, match=name):
        sweep.Cluster(**kwargs)


def test_bad_scheduler_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv(sweep.SCHEDULER_ENV, "not an address")
    with pytest.raises(ValueError, match=sweep.SCHEDULER_ENV):
        sweep.run_sweep(su.toy_unit, [su.ToyUnit(1.0)], cache_dir=tmp_path)
    assert sweep.Cluster(scheduler="tcp://127.0.0.1:8786").resolved_scheduler() == "tcp://127.0.0.1:8786"
    assert sweep.Cluster(serial=True).resolved_scheduler() is None
    env = sweep.Cluster(threads_per_worker=1).worker_env()
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["NPROC"] == "1"
    assert "--xla_cpu_multi_thread_eigen=false" in env["XLA_FLAGS"]
    assert sweep.Cluster(threads_per_worker=2).worker_env()["MKL_NUM_THREADS"] == "2"


def test_concurrent_sweeps_share_one_cache(tmp_path):
    import threading

    units = [su.SleepUnit(i, 0.02) for i in range(12)]
    reports = {}

    def go(name, order):
        reports[name] = sweep.run_sweep(su.sleep_unit, [units[i] for i in order], cache_dir=tmp_path,
                                        cluster=sweep.Cluster(serial=True))

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
    again = sweep.run_sweep(su.sleep_unit, units, cache_dir=tmp_path, cluster=sweep.Cluster(serial=True))
    assert again.n_loaded == 12 and again.results == list(range(12))


def test_cached_result_of_unregistered_type_loads(tmp_path, monkeypatch):
    from rfdiff import results

    units = [su.ToyUnit(3.0)]
    first = sweep.run_sweep(su.pair_unit, units, cache_dir=tmp_path, cluster=sweep.Cluster(serial=True))
    monkeypatch.delitem(results._REGISTRY, "sweep_units.Pair")  # as in a fresh client process
    again = sweep.run_sweep(su.pair_unit, units, cache_dir=tmp_path, cluster=sweep.Cluster(serial=True))
    assert (again.n_loaded, again.n_computed) == (1, 0)
    assert isinstance(again.results[0], su.Pair) and again.results[0].square == first.results[0].square == 9.0


def test_interrupt_serial_leaves_no_partial_files(tmp_path):
    def stop(done, total):
        if done == 2:
            raise KeyboardInterrupt

    units = [su.ToyUnit(float(x)) for x in range(5)]
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(su.toy_unit, units, cache_dir=tmp_path, cluster=sweep.Cluster(serial=True), progress=stop)
    assert len(sweep.read_manifest(tmp_path)) == 2 and no_temp_files(tmp_path)
    rep = sweep.run_sweep(su.toy_unit, units, cache_dir=tmp_path, cluster=sweep.Cluster(serial=True))
    assert (rep.n_loaded, rep.n_computed) == (2, 3)


def test_interrupt_cancels_and_closes_local_cluster(tmp_path):
    psutil = pytest.importorskip("psutil")

    def stop(done, total):
        raise KeyboardInterrupt

    markers = tmp_path / "markers"
    markers.mkdir()
    units = [su.SleepUnit(0, 0.0)] + [su.SleepUnit(i, 30.0, str(markers)) for i in range(1, 4)]
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(su.sleep_unit, units, cache_dir=tmp_path / "cache", cluster=sweep.Cluster(n_workers=2),
                        progress=stop)
    # the running units were cancelled, not waited for: none of them reached its end marker
    assert list(markers.iterdir()) == []
    tmp_path = tmp_path / "cache"
    assert [m["unit"]["x"] for m in sweep.read_manifest(tmp_path)] == [0] and no_temp_files(tmp_path)
    time.sleep(0.5)
    alive = [p for p in psutil.Process().children(recursive=True)
             if p.is_running() and p.status() != "zombie" and "spawn_main" in " ".join(p.cmdline())]
    assert not alive, alive
