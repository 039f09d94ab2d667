"""rfdiff_cli/finite_d.py (``rfdiff finite-d``): the ingredient table at a tiny size, --out and --overwrite, flag errors."""
import numpy as np
import pytest

from rfdiff_cli import cli


@pytest.mark.filterwarnings("ignore:U. Mehler expansion not converged")
def test_tiny_table_written_and_not_overwritten(tmp_path, capsys, monkeypatch):
    from rfdiff.pipelines import finite_d
    monkeypatch.setattr(finite_d, "theory_curves", lambda rung: (np.full(6, 0.5), np.full(6, 0.6)))
    out = tmp_path / "table.md"
    argv = ["finite-d", "--rung", "4,4,1,0.1", "--seeds", "2", "--cache", str(tmp_path / "c"), "--out", str(out)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert text == out.read_text()
    row = text.splitlines()[2]
    assert row.startswith("| 4 | 4 | 1 | 0.1 | 2 | ") and "| 0.5000 (" in row and "| 0.6000 (" in row
    assert len(list((tmp_path / "c").glob("finite_d_4_4_1_0.1_*.json"))) == 2
    assert cli.main(argv) == 2                                  # refused before any computation
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(argv + ["--overwrite"]) == 0 and out.read_text() == text


@pytest.mark.parametrize("flags, where", [(["--rung", "4,4,1,0.1", "--seeds", "0"], "--seeds"),
                                          (["--rung", "4,4,1"], "--rung"), (["--rung", "4,x,1,0.1"], "--rung"),
                                          (["--rung", "1,4,1,0.1"], "--rung 1,4,1,0.1: d must be"), ([], "--rung")])
def test_bad_flags_are_one_line_and_exit_2(flags, where, tmp_path, capsys):
    assert cli.main(["finite-d", "--cache", str(tmp_path / "c")] + flags) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and where in err
    assert not (tmp_path / "c").exists()
