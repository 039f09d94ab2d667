"""rfdiff_analysis.timescales_table: the saved runs' timescales re-read by the shared rule, one row per side,
values at a grid end shown as the bounds they are."""
import pytest

from rfdiff import results, timescales
from rfdiff.results import Thresholds
from rfdiff_analysis import timescales_table
from rfdiff_cli import rf_timescales


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert rf_timescales.main(["--p", "128", "--n", "32", "--d", "16", "--n-tau", "60", "--no-progress", "--no-plot",
                               "--out", str(out), "--name", "r"]) == 0
    return out / "r"


def test_rows_are_the_shared_rule_on_every_side(saved_run):
    th = Thresholds(0.05, 0.3, 0.05)
    rows = timescales_table.rows_from([str(saved_run) + ".json"], th)
    res = results.load(saved_run)
    assert [r["side"] for r in rows] == ["simulation", "theory", "theory d→∞"]
    for r, side in zip(rows, (res.simulation, res.theory, res.theory_d_inf)):
        ts = timescales.extract(side.curves, th, side.spectrum, n=32, p=128, d=16, t=0.1)
        assert r["tau_gen"] == ts.tau_gen and r["tau_mem"] == ts.tau_mem and r["lambda_mem"] == ts.lambda_mem
    # other thresholds, other τ_mem: the table re-reads the curves rather than the saved numbers
    loose = timescales_table.rows_from([str(saved_run)], Thresholds(0.05, 0.9, 0.05))
    assert loose[0]["tau_mem"] > rows[0]["tau_mem"]


def test_stems_accept_json_npz_and_stem_once_each(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b.x"
    names = [f"{a}.npz", f"{a}.json", str(a), f"{b}.json", f"{b}.npz"]
    assert timescales_table.stems(names) == [a, b]


def test_a_value_at_a_grid_end_is_printed_as_a_bound():
    row = {"run": "r", "side": "simulation", "tau_gen": 0.1, "tau_mem": 50.0, "tau_mem_abs": float("nan"),
           "min_score_error": 0.2, "at_grid_end": ("tau_gen<", "tau_mem_abs>"), "tau_grid": (0.1, 1e7)}
    cells = timescales_table.cells(row)
    assert cells["tau_gen"] == "< 0.1" and cells["tau_mem_abs"] == "> 1e+07" and cells["tau_mem"] == "50"
    assert "a bound only" in timescales_table.format_table([row])
    csv = timescales_table.csv_text([row])
    assert "<0.1" in csv and ">1e+07" in csv
