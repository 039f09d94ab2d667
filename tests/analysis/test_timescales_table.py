"""``rfdiff table`` (rfdiff_analysis.timescales_table): the saved runs' timescales re-read by the shared rule,
one row per side, and a CSV that is written once and never replaced without --overwrite."""
import csv

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


def test_csv_written_once(saved_run, tmp_path, capsys):
    out = tmp_path / "t.csv"
    assert timescales_table.main([str(saved_run), "--csv", str(out)]) == 0
    with open(out, newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 3 and float(table[0]["tau_gen"]) > 0
    before = out.read_bytes()
    assert timescales_table.main([str(saved_run), "--csv", str(out), "--gen-frac", "0.2"]) == 2
    assert "--csv" in capsys.readouterr().err and out.read_bytes() == before
    assert timescales_table.main([str(saved_run), "--csv", str(out), "--gen-frac", "0.2", "--overwrite"]) == 0
    assert out.read_bytes() != before and [p.name for p in tmp_path.iterdir()] == ["t.csv"]
