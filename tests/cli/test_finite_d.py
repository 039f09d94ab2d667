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


@pytest.mark.filterwarnings("ignore:U. Mehler expansion not converged")
def test_preset_rows_and_unaffordable_cells_say_size_and_cost(tmp_path, capsys, monkeypatch):
    """--preset ingredient gives the documented rungs; a §8 cell above --max-dim-inf names n(d+1) and the cost, the τ column '—'."""
    from rfdiff.pipelines import finite_d
    monkeypatch.setattr(finite_d, "theory_curves", lambda rung: (np.full(6, 0.5), np.full(6, 0.6)))
    monkeypatch.setattr(finite_d, "INGREDIENT_RUNGS", (finite_d.Rung(4, 4.0, 1.0, 0.1),))
    argv = ["finite-d", "--preset", "ingredient", "--rung", "4,4,2,0.1", "--seeds", "1", "--cache", str(tmp_path / "c"),
            "--max-dim", "0", "--max-dim-inf", "20"]
    assert cli.main(argv) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [r.split(" | ")[:3] for r in rows] == [["| 4", "4", "1"], ["| 4", "4", "2"]]
    assert "τ → ∞ only" in rows[0] and "not computed" not in rows[0]          # n(d+1) = 20: the τ → ∞ route
    assert "not computed: n(d+1) = 40" in rows[1] and "GiB per seed" in rows[1] and rows[1].endswith("| — |")
    assert cli.main(argv[:1] + ["--seeds", "1", "--max-dim", "-1", "--preset", "ingredient"]) == 2
    assert "--max-dim" in capsys.readouterr().err
