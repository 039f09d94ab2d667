"""Where a command's sweep runs (rfdiff_cli.cluster): flag conflicts, unreachable schedulers, lost workers."""
import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")

import sweep_units as su  # noqa: E402  (tests/helpers, on sys.path through the pytest configuration)

from rfdiff import sweep  # noqa: E402
from rfdiff.cache import Cache  # noqa: E402
from rfdiff_cli import cluster  # noqa: E402
from rfdiff_cli.common import UsageError  # noqa: E402

HELPERS = Path(__file__).resolve().parents[1] / "helpers"


def spec(*argv):
    ap = argparse.ArgumentParser()
    cluster.add_flags(ap)
    return cluster.from_args(ap.parse_args(list(argv)))


@pytest.mark.parametrize("argv, says", [
    (["--scheduler", "tcp://127.0.0.1:8786", "--serial"], "--scheduler: cannot be combined with --serial"),
    (["--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"], "--scheduler: cannot be combined with --workers"),
    (["--workers", "0"], "--workers"),
    (["--connect-timeout", "0"], "--connect-timeout"),
    (["--no-workers-timeout", "nan"], "--no-workers-timeout"),
    (["--serial", "--dashboard"], "--dashboard"),
])
def test_conflicting_or_bad_flags_refused(argv, says, monkeypatch):
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    with pytest.raises(UsageError, match=says):
        spec(*argv)


def test_explicit_flags_override_the_environment_variable(monkeypatch):
    monkeypatch.setenv(cluster.SCHEDULER_ENV, "tcp://127.0.0.1:8786")
    monkeypatch.setattr(cluster, "_probe", lambda spec: None)  # nobody listens there
    assert spec().scheduler == "tcp://127.0.0.1:8786" and spec().source == cluster.SCHEDULER_ENV
    assert spec("--serial").scheduler is None and spec("--workers", "1").scheduler is None


def test_dashboard_needs_its_extra(monkeypatch):
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    monkeypatch.setattr(cluster, "_missing", lambda module: True)
    with pytest.raises(UsageError, match=r"pip install 'rfdiff\[dashboard\]'"):
        spec("--dashboard")


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:1", "tcp://no-such-host.invalid:8786", "tcp://127.0.0.1",
                                     "garbage!!", "foo://host:1"])
def test_unreachable_scheduler_is_one_line(address):
    """Nothing listening, an unresolvable host, no port, garbage: Dask's own reason in one line, within the timeout,
    when the flags are checked (before the command creates or computes anything)."""
    with pytest.raises(UsageError) as err:
        spec("--scheduler", address, "--connect-timeout", "0.3")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"--scheduler: cannot reach a Dask scheduler at {address!r}: ")
    if address.startswith("tcp://") and address[-2:] in (":1", "86"):  # reachable syntax, nobody there
        assert "after 0.3 s" in msg


def test_command_refuses_conflict_and_bad_environment_before_computing(tmp_path, capsys, monkeypatch):
    """Through a command: a conflict and garbage in RFDIFF_SCHEDULER each give one line and exit 2, nothing computed."""
    from rfdiff_cli import finite_size as script

    monkeypatch.setenv("RFDIFF_NO_COMPILE_CACHE", "1")
    argv = ["--ds", "8", "--psi-ns", "4", "--no-plot", "--no-progress", "--out", str(tmp_path), "--name", "x"]
    assert script.main(argv + ["--scheduler", "tcp://127.0.0.1:1", "--serial"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --scheduler: cannot be combined with --serial (the scheduler's own workers run the sweep)"]
    monkeypatch.setenv(cluster.SCHEDULER_ENV, "not an address")
    assert script.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {cluster.SCHEDULER_ENV}: cannot reach a Dask scheduler")
    assert not list(tmp_path.rglob("*.npz"))


def test_all_workers_gone_mid_sweep_stops_with_one_line_and_resumes(tmp_path, capsys):
    """The only worker of an external scheduler leaves after the first unit (closed without waiting for its
    running unit): the sweep stops after --no-workers-timeout with one line and exit 1; a rerun loads unit 0."""
    import threading

    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                      scheduler_port=0, dashboard_address="127.0.0.1:0") as sched:
        worker = next(iter(sched.workers.values()))

        def close_worker_after_first(done, total):
            if done == 1:
                threading.Thread(target=lambda: sched.sync(worker.close, executor_wait=False)).start()

        units = [su.SleepUnit(0, 0.0), su.SleepUnit(1, 2.0)]
        with pytest.raises(SystemExit) as stop:
            with cluster.ClusterSpec(scheduler=sched.scheduler_address, no_workers_timeout=0.5).client() as client:
                sweep.run_sweep(su.sleep_unit, units, cache=Cache(tmp_path), client=client,
                                progress=close_worker_after_first)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == cluster.EXIT_NO_WORKERS and len(err) == 1
    assert err[0].startswith(f"error: no Dask worker at {sched.scheduler_address} for 0.5 s")
    again = sweep.run_sweep(su.sleep_unit, units[:1], cache=Cache(tmp_path))
    assert (again.n_loaded, again.n_computed) == (1, 0)


@pytest.mark.slow
def test_all_workers_killed_mid_sweep_stops_with_one_line_and_resumes(tmp_path, capsys):
    """An external scheduler whose only worker is killed (SIGKILL) mid-sweep: the sweep stops after
    --no-workers-timeout with one line; the unit finished before is cached and a rerun loads it."""
    from distributed import LocalCluster

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HELPERS), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", NPROC="1")
    with LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1", scheduler_port=0,
                      dashboard_address="127.0.0.1:0") as sched:
        worker = subprocess.Popen([sys.executable, "-m", "dask", "worker", sched.scheduler_address, "--nthreads", "1",
                                   "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            s = cluster.ClusterSpec(scheduler=sched.scheduler_address, no_workers_timeout=1.0)
            units = [su.SleepUnit(0, 0.0), su.SleepUnit(1, 60.0)]

            def kill_worker_after_first(done, total):
                if done == 1:
                    worker.send_signal(signal.SIGKILL)

            with pytest.raises(SystemExit) as stop:
                with s.client() as client:
                    client.wait_for_workers(1, timeout=120)
                    sweep.run_sweep(su.sleep_unit, units, cache=Cache(tmp_path), client=client,
                                    progress=kill_worker_after_first)
        finally:
            worker.kill()
            worker.wait()
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == cluster.EXIT_NO_WORKERS and len(err) == 1
    assert err[0].startswith(f"error: no Dask worker at {sched.scheduler_address} for 1 s")
    again = sweep.run_sweep(su.sleep_unit, units[:1], cache=Cache(tmp_path))
    assert (again.n_loaded, again.n_computed) == (1, 0)
    assert sweep.read_manifest(tmp_path)[0]["pid"] == worker.pid


def test_scheduler_lost_mid_sweep_is_one_line(tmp_path, capsys):
    """The cluster goes away after the first unit: one line and exit 1 instead of a SweepError traceback;
    the finished unit is cached."""
    import threading

    from distributed import LocalCluster

    sched = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                         scheduler_port=0, dashboard_address="127.0.0.1:0")
    address = sched.scheduler_address

    def close_scheduler_after_first(done, total):
        if done == 1:
            threading.Thread(target=sched.close).start()  # its worker finishes the running unit, then it goes

    try:
        with pytest.raises(SystemExit) as stop:
            with cluster.ClusterSpec(scheduler=address).client() as client:
                sweep.run_sweep(su.sleep_unit, [su.SleepUnit(0, 0.0), su.SleepUnit(1, 1.0)], cache=Cache(tmp_path),
                                client=client, progress=close_scheduler_after_first).raise_on_failure()
    finally:
        sched.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == cluster.EXIT_NO_WORKERS and len(err) == 1
    assert err[0].startswith(f"error: lost the connection to the Dask scheduler at {address}")
    assert 0 in [m["unit"]["x"] for m in sweep.read_manifest(tmp_path)]


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_watchdog_interrupt_reaches_the_main_thread(sigint):
    """The no-workers watchdog must stop the sweep's main thread (which polls for finished tasks) whether Python
    handles SIGINT or the process ignores it, as a background job does: ``_thread.interrupt_main`` did nothing
    there, and .ci/run hung."""
    import signal
    import threading
    import time

    old = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler if sigint == "default" else signal.SIG_IGN)
    try:
        threading.Timer(0.2, cluster._interrupt_main).start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            while time.monotonic() - t0 < 5.0:         # the sweep's polling loop
                time.sleep(0.05)
            raise AssertionError("no interrupt within 5 s")
        assert time.monotonic() - t0 < 5.0
    finally:
        signal.signal(signal.SIGINT, old)
