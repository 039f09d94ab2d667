"""The main job experiments/rf_timescales.py: outputs, determinism, validation."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("rf_timescales", ROOT / "experiments" / "rf_timescales.py")
rf_timescales = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rf_timescales)

SMALL = ["--p", "128", "--n", "16", "--d", "16", "--n-tau", "40", "--no-progress", "--no-theory"]


def run(tmp_path, *extra, name="run"):
    rc = rf_timescales.main(SMALL + ["--out", str(tmp_path), "--name", name, *extra])
    return rc, tmp_path / f"{name}.json"


def test_outputs_and_determinism(tmp_path):
    rc, path = run(tmp_path, name="a")
    assert rc == 0
    res = json.loads(path.read_text())
    for f in ("a.npz", "a.png", "a.pdf"):
        assert (tmp_path / f).stat().st_size > 0
    assert res["config"]["p"] == 128 and res["metadata"]["versions"]["jax"]
    ts = res["timescales"]
    assert 0 < ts["tau_gen"]["tau_gen"] < ts["tau_mem"]["tau_mem"]
    arr = np.load(tmp_path / "a.npz")
    assert arr["tau"].shape == (40,) and np.all(np.isfinite(arr["test_loss"]))
    np.testing.assert_allclose(res["final"]["train_loss"], arr["train_loss"][-1])
    rc, path_b = run(tmp_path, "--no-plot", name="b")
    res_b = json.loads(path_b.read_text())
    for k in ("timescales", "final", "matrices", "spectrum", "min_score_error"):
        assert res[k] == res_b[k], k  # same seed → identical numbers
    rc, path_c = run(tmp_path, "--no-plot", "--seed", "1", name="c")
    assert json.loads(path_c.read_text())["final"] != res["final"]


@pytest.mark.parametrize("bad,word", [(["--p", "0"], "p"), (["--n", "-3"], "n"), (["--d", "0"], "d"),
                                      (["--t", "0"], "t"), (["--t", "nan"], "t"),
                                      (["--activation", "softsign"], "activation"), (["--data", "cubes"], "data")])
def test_invalid_inputs_fail_cleanly(tmp_path, capsys, bad, word):
    out = tmp_path / "out"
    rc = rf_timescales.main(SMALL + ["--out", str(out)] + bad)
    assert rc == 2
    assert word in capsys.readouterr().err
    assert not out.exists()  # nothing written on failure


def test_device_aware_method_and_run_summary(tmp_path):
    """auto picks dense up to p = 8192 on CPU; memory is recorded; summarize_runs pairs CPU/GPU runs of equal p, n."""
    from rfdiff import dynamics, io

    assert dynamics.dense_fits(8192) and not dynamics.dense_fits(16384)  # CPU rule
    assert dynamics.dense_path_bytes(16384) == 8 * 8 * 16384**2
    assert io.device_memory() is None  # CPU: peak RSS applies
    rc, path = run(tmp_path, "--no-plot", name="cpu_run")
    res = json.loads(path.read_text())
    assert res["method"] == "dense" and res["memory"]["peak_rss_bytes"] > 1e7
    fake = dict(res, name="gpu_run", metadata=dict(res["metadata"], jax_backend="gpu"),
                timings_s=dict(res["timings_s"], total=res["timings_s"]["total"] / 4.0))
    (tmp_path / "gpu_run.json").write_text(json.dumps(fake))
    spec_s = importlib.util.spec_from_file_location("summarize_runs", ROOT / "benchmarks" / "summarize_runs.py")
    mod = importlib.util.module_from_spec(spec_s)
    spec_s.loader.exec_module(mod)
    s = mod.summarize(tmp_path)
    assert len(s["runs"]) == 2 and len(s["speedups"]) == 1
    assert s["speedups"][0]["speedup_total"] == pytest.approx(4.0)


def test_theory_columns_include_test_loss(tmp_path):
    """With theory on (isotropic data), the result carries the deterministic-equivalent L_test and E_score.

    p = 512, n = 64, d = 32 (ψ_p = 16, ψ_n = 2): the theory's τ → ∞ test loss and minimal score error
    are finite, the curves have the τ grid's length, and the τ → ∞ test loss agrees with the simulated
    one within 40 % at this small d (measured: 2.62 theory vs 2.37 simulated, +10 %; min E_score 0.133 vs 0.138).
    """
    args = ["--p", "512", "--n", "64", "--d", "32", "--n-tau", "30", "--no-progress", "--no-plot",
            "--out", str(tmp_path), "--name", "th"]
    assert rf_timescales.main(args) == 0
    res = json.loads((tmp_path / "th.json").read_text())
    th = res["theory"]
    assert th["curves_method"]["test_loss"].startswith("deterministic equivalent")
    arr = np.load(tmp_path / "th.npz")
    assert arr["theory_test_loss"].shape == (30,) and np.all(np.isfinite(arr["theory_score_error"]))
    assert th["score_error_min"] == pytest.approx(float(np.min(arr["theory_score_error"])))
    assert th["test_loss_inf"] == pytest.approx(res["final"]["test_loss"], rel=0.4)
