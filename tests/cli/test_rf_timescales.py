"""The main job, experiments/rf_timescales.py (rfdiff_cli.rf_timescales, ``rfdiff run``): outputs, determinism,
validation of every flag (property-based, Hypothesis), and one run in its own process."""
import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfdiff import results
from rfdiff.study import StudyResult
from rfdiff_cli import rf_timescales

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--p", "128", "--n", "16", "--d", "16", "--n-tau", "40", "--no-progress", "--no-theory"]


def run(tmp_path, *extra, name="run"):
    rc = rf_timescales.main(SMALL + ["--out", str(tmp_path), "--name", name, *extra])
    return rc, tmp_path / name


def _same_number(x, y) -> bool:
    return x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))


def _same(a: StudyResult, b: StudyResult) -> bool:
    """Same numbers on the simulation side (curves, τ = ∞ limit, timescales, spectrum) and the same matrices."""
    sa, sb = a.simulation, b.simulation
    arrays = [(sa.curves.as_dict(), sb.curves.as_dict()), (sa.limit.as_dict(), sb.limit.as_dict())]
    same = all(x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x) for x, y in arrays)
    ta, tb = dataclasses.asdict(sa.timescales), dataclasses.asdict(sb.timescales)
    same_ts = ta.keys() == tb.keys() and all(_same_number(ta[k], tb[k]) for k in ta)
    ma, mb = a.diagnostics["matrices"], b.diagnostics["matrices"]
    same_m = ma.keys() == mb.keys() and all(_same_number(ma[k], mb[k]) for k in ma)
    return same and same_ts and same_m and np.array_equal(sa.spectrum.nodes, sb.spectrum.nodes)


def test_outputs_and_determinism(tmp_path):
    rc, stem = run(tmp_path, name="a")
    assert rc == 0
    res, meta = results.load(stem, with_meta=True)
    assert isinstance(res, StudyResult)
    for f in ("a.json", "a.npz", "a.png", "a.pdf"):
        assert (tmp_path / f).stat().st_size > 0
    assert res.config.p == 128 and meta["versions"]["jax"] and meta["command"].startswith("rfdiff run")
    ts = res.simulation.timescales
    assert 0 < ts.tau_gen < ts.tau_mem
    c = res.simulation.curves
    assert c.tau.shape == (40,) and np.all(np.isfinite(c.test_loss)) and c.train_loss.dtype == np.float64
    assert res.theory is None and res.prediction is None                 # --no-theory
    assert res.diagnostics["method"] == "dense" and meta["memory"]["peak_rss_bytes"] > 1e7
    assert run(tmp_path, "--no-plot", name="b")[0] == 0
    assert _same(res, results.load(tmp_path / "b"))                     # same seed → identical numbers
    assert not (tmp_path / "b.png").exists()
    assert run(tmp_path, "--no-plot", "--seed", "1", name="c")[0] == 0
    assert not _same(res, results.load(tmp_path / "c"))


def test_route_and_its_estimate_are_printed_first_and_a_run_without_spectrum_plots(tmp_path, capsys):
    """The route, its memory and operation count and the time they take at this machine's GEMM rate come first;
    ``--spectrum none`` leaves the spectral rows empty and still draws the figure."""
    rc, stem = run(tmp_path, "--method", "lanczos", "--spectrum", "none", name="s")
    first = capsys.readouterr().err.strip().splitlines()[0]
    assert rc == 0 and first.startswith("route: lanczos, spectrum: none, peak memory ≈") and "GEMM rate" in first
    res = results.load(stem)
    assert res.simulation.spectrum is None and math.isnan(res.simulation.timescales.lambda_mem)
    assert (tmp_path / "s.png").stat().st_size > 0


def test_the_same_run_on_a_dask_scheduler(tmp_path, capsys):
    """--scheduler runs the study on a worker of that cluster: the same numbers as in this process, saved here;
    an unreachable scheduler is one line, before anything is computed."""
    from distributed import LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                      scheduler_port=0, dashboard_address=None) as sched:
        rc, stem = run(tmp_path, "--scheduler", sched.scheduler_address, "--no-plot", name="remote")
    assert rc == 0 and "running on a worker of tcp://127.0.0.1" in capsys.readouterr().err
    assert run(tmp_path, "--no-plot", name="here")[0] == 0
    remote, meta = results.load(stem, with_meta=True)
    assert _same(remote, results.load(tmp_path / "here")) and meta["scheduler"].startswith("tcp://")
    assert run(tmp_path, "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "0.5", name="gone")[0] == 2
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line.startswith("error: --scheduler: cannot reach") and not (tmp_path / "gone.json").exists()


@pytest.mark.parametrize("bad,word", [(["--p", "0"], "p"), (["--n", "-3"], "n"), (["--d", "0"], "d"),
                                      (["--t", "0"], "t"), (["--t", "nan"], "t"),
                                      (["--activation", "softsign"], "activation"), (["--data", "cubes"], "data")])
def test_invalid_inputs_fail_cleanly(tmp_path, capsys, bad, word):
    out = tmp_path / "out"
    rc = rf_timescales.main(SMALL + ["--out", str(out)] + bad)
    assert rc == 2
    assert word in capsys.readouterr().err
    assert not out.exists()  # nothing written on failure


def test_theory_columns_include_test_loss(tmp_path):
    """With theory on (isotropic data), the result carries the deterministic-equivalent L_test and E_score.

    p = 512, n = 64, d = 32 (ψ_p = 16, ψ_n = 2): the theory's τ → ∞ test loss and minimal score error
    are finite, the curves have the τ grid's length, and the τ → ∞ test loss agrees with the simulated
    one within 40 % at this small d (measured: 2.62 theory vs 2.37 simulated, +10 %; min E_score 0.133 vs 0.138).
    """
    args = ["--p", "512", "--n", "64", "--d", "32", "--n-tau", "30", "--no-progress", "--no-plot",
            "--out", str(tmp_path), "--name", "th"]
    assert rf_timescales.main(args) == 0
    res = results.load(tmp_path / "th")
    assert res.prediction.diagnostics["curves_method"]["test_loss"].startswith("deterministic equivalent")
    th, sim = res.theory, res.simulation
    assert th.curves.test_loss.shape == (30,) and np.all(np.isfinite(th.curves.score_error))
    assert th.timescales.min_score_error == pytest.approx(float(np.min(th.curves.score_error)))
    assert th.limit.test_loss[0] == pytest.approx(sim.limit.test_loss[0], rel=0.4)
    assert th.timescales.min_score_error == pytest.approx(sim.timescales.min_score_error, rel=0.4)


# ---------------------------------------------------------------- every flag (in-process: the rfdiff_cli package)

FLAG_VALUES = {
    "--p": st.sampled_from(["0", "-3", "abc", "1.5"]), "--n": st.sampled_from(["0", "-1", "x"]),
    "--d": st.sampled_from(["0", "-2"]), "--t": st.sampled_from(["0", "-1", "nan", "inf"]),
    "--tau-min": st.sampled_from(["0", "-1", "nan"]), "--tau-max": st.sampled_from(["inf", "nan", "0.001"]),
    "--n-tau": st.sampled_from(["1", "0", "-4"]), "--eta": st.sampled_from(["0", "-1", "nan", "inf"]),
    "--gen-frac": st.sampled_from(["0", "-1", "nan"]), "--mem-frac": st.sampled_from(["0", "1", "2", "-0.5"]),
    "--mem-abs": st.sampled_from(["0", "-1", "inf"]), "--tol": st.sampled_from(["0", "-1e-8", "1", "2"]),
    "--lanczos-tol": st.sampled_from(["0", "-1"]), "--lanczos-steps": st.sampled_from(["0", "-1"]),
    "--method": st.sampled_from(["eigh", "x"]), "--spectrum": st.sampled_from(["all"]),
    "--activation": st.sampled_from(["softsign", "relu"]), "--data": st.sampled_from(["cubes", ""]),
    "--sigma-x": st.sampled_from(["0", "-1", "nan"]), "--seed": st.sampled_from(["-1", "x"]),
    "--slq-probes": st.sampled_from(["0"]), "--name": st.sampled_from(["../x", "a/b", ".."]),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bad_flags_one_line_naming_the_flag_no_files(tmp_path, capsys, data):
    flag = data.draw(st.sampled_from(sorted(FLAG_VALUES)))
    value = data.draw(FLAG_VALUES[flag])
    out = tmp_path / "out"
    capsys.readouterr()
    try:
        rc = rf_timescales.main(["--p", "64", "--n", "8", "--d", "8", "--no-progress", "--out", str(out),
                                 f"{flag}={value}"])
    except SystemExit as exc:           # argparse's own type errors (one line: common.Parser)
        rc = exc.code
    assert rc == 2
    # one error line naming the flag (an informational "route: …" line may precede it once the configuration
    # is valid: the command prints the route it chose before it checks the output name)
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("route: ")]
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and flag in err[0], (flag, value, err)
    assert not out.exists() or not any(out.iterdir())


def test_refuses_to_overwrite_and_an_output_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert rf_timescales.main(["--out", str(f), "--no-progress"]) == 2
    assert "--out" in capsys.readouterr().err
    (tmp_path / "r.json").write_text("{}")
    assert rf_timescales.main(["--out", str(tmp_path), "--name", "r", "--no-progress"]) == 2
    msg = capsys.readouterr().err
    assert "--overwrite" in msg and "r.json" in msg and (tmp_path / "r.json").read_text() == "{}"


# ---------------------------------------------------------------- the script in its own process


def test_script_smoke(tmp_path):
    """``python experiments/rf_timescales.py`` at tiny sizes (d = 8, p = 64, n = 16), theory and figure included."""
    cmd = [sys.executable, str(ROOT / "experiments" / "rf_timescales.py"), "--d", "8", "--p", "64", "--n", "16",
           "--n-tau", "20", "--no-progress", "--out", str(tmp_path), "--name", "smoke"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "τ_gen" in proc.stdout and "theory d→∞" in proc.stdout
    res = results.load(tmp_path / "smoke")
    assert res.config.d == 8 and res.theory is not None
    for ext in ("json", "npz", "png", "pdf"):
        assert (tmp_path / f"smoke.{ext}").stat().st_size > 0


# ---------------------------------------------------------------- nothing lost, nothing overwritten


def test_a_save_cut_short_leaves_no_result_and_the_rerun_needs_no_overwrite(tmp_path):
    """kill -9 between the NPZ and the JSON left an NPZ and a temporary file: not a result; the rerun saves."""
    (tmp_path / "r.npz").write_bytes(b"orphan")
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    from rfdiff import io
    stale = io.temp_path(tmp_path / "r.json", pid=int(proc.stdout))
    stale.write_text("{")
    rc, stem = run(tmp_path, "--no-plot", name="r")
    assert rc == 0 and results.load(stem).config.p == 128
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.npz"]


@pytest.mark.parametrize("length", [250, 300])
def test_a_name_too_long_to_save_is_refused_before_computing(tmp_path, capsys, length):
    rc, _ = run(tmp_path, name="x" * length)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error: --name") and "bytes" in err[-1]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fail_at", ["npz", "figure"])
def test_full_disk_prints_the_table_then_one_line(tmp_path, capsys, monkeypatch, fail_at):
    """No space left: the table is printed first, then one line naming the folder and what was saved."""
    import errno

    import matplotlib.figure

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if fail_at == "npz":
        monkeypatch.setattr(np, "savez", full)
    else:
        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    rc, _ = run(tmp_path, name="r")
    out, err = capsys.readouterr()
    assert rc == 1 and "τ_gen" in out
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: no space left on {tmp_path}") and "Traceback" not in err
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == ([] if fail_at == "npz" else ["r.json", "r.npz"])
    assert ("r.json" in last) == (fail_at == "figure")


def test_a_timescale_at_the_grid_start_is_a_bound_with_the_flag_to_change(tmp_path, capsys):
    rc, stem = run(tmp_path, "--no-plot", "--tau-min", "1e4", "--tau-max", "1e6", name="g")
    out = capsys.readouterr().out
    assert rc == 0 and "< 1e+04" in out and "τ_gen < τ_min = 1e+04: extend --tau-min" in out
    assert results.load(stem).simulation.timescales.grid_end("tau_gen") == "<"


def test_an_existing_figure_is_not_replaced_without_overwrite(tmp_path, capsys):
    (tmp_path / "f.pdf").write_bytes(b"%PDF old")
    rc, _ = run(tmp_path, name="f")
    assert rc == 2 and "f.pdf" in capsys.readouterr().err and (tmp_path / "f.pdf").read_bytes() == b"%PDF old"
