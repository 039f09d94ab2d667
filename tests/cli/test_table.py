"""``rfdiff table`` (rfdiff_cli/table.py): inputs by .json, .npz or stem, each once; a CSV written once,
never over a link, a device or a folder."""
import csv
import os

import pytest

from rfdiff_cli import rf_timescales, table


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert rf_timescales.main(["--p", "64", "--n", "16", "--d", "16", "--n-tau", "30", "--no-progress", "--no-plot",
                               "--no-theory", "--out", str(out), "--name", "r"]) == 0
    return out / "r"


def test_npz_finds_its_json_and_duplicates_are_listed_once(saved_run, capsys):
    assert table.main([f"{saved_run}.npz", f"{saved_run}.json", str(saved_run)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert sum(" simulation " in f" {line} " for line in lines) == 1


def test_csv_written_once(saved_run, tmp_path, capsys):
    out = tmp_path / "t.csv"
    assert table.main([str(saved_run), "--csv", str(out)]) == 0
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and float(rows[0]["tau_gen"]) > 0
    before = out.read_bytes()
    assert table.main([str(saved_run), "--csv", str(out), "--gen-frac", "0.2"]) == 2
    assert "--csv" in capsys.readouterr().err and out.read_bytes() == before
    assert table.main([str(saved_run), "--csv", str(out), "--gen-frac", "0.2", "--overwrite"]) == 0
    assert out.read_bytes() != before and [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_csv_never_replaces_a_link_a_device_or_a_folder(saved_run, tmp_path, capsys):
    target = tmp_path / "target.csv"
    target.write_text("keep")
    (tmp_path / "link.csv").symlink_to(target)
    (tmp_path / "folder").mkdir()
    cases = [(tmp_path / "link.csv", "symbolic link"), (tmp_path / "folder", "folder")]
    if os.path.exists("/dev/null"):
        cases.append(("/dev/null", "not a regular file"))
    for path, word in cases:
        assert table.main([str(saved_run), "--csv", str(path), "--overwrite"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: --csv") and word in err[0]
    assert (tmp_path / "link.csv").is_symlink() and target.read_text() == "keep"
    assert not os.path.isfile("/dev/null")
