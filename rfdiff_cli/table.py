"""rfdiff table: τ_gen and τ_mem of saved main-job results, re-read with thresholds of your choice.

Example: rfdiff table results/rf_*.json --gen-frac 0.05 --mem-frac 0.3 --csv table.csv
Each run may be named by its .json, its .npz or its stem; a run named twice is listed once. The
table is rfdiff_analysis.timescales_table (the shared rule of docs/theory.md §6.1–6.2 on every side).
"""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from rfdiff_cli import common


def check_csv(path: str, overwrite: bool) -> None:
    """Refuse a --csv target that is not a regular file (a symlink, device, folder), or exists without --overwrite."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        common.check_folder(Path(path).absolute().parent, "--csv")
        return
    if stat.S_ISDIR(st.st_mode):
        raise common.UsageError(f"--csv: {path} is a folder; give a file name")
    if not stat.S_ISREG(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file (a device, pipe or socket)"
        raise common.UsageError(f"--csv: {path} is {kind}; only a regular file is ever replaced")
    if not overwrite:
        raise common.UsageError(f"--csv: {path} exists (pass --overwrite to replace it)")


def parse_args(argv=None):
    ap = common.Parser(prog="rfdiff table", description=__doc__)
    ap.add_argument("results", nargs="+", help="result files written by rfdiff run (<run>.json, <run>.npz or <run>)")
    common.add_threshold_flags(ap)
    ap.add_argument("--csv", default=None, help="also write the table as CSV here (default: no CSV)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --csv file")
    args = ap.parse_args(argv)
    if args.csv:
        check_csv(args.csv, args.overwrite)
    return args


@common.guarded
def main(argv=None) -> int:
    args = parse_args(argv)
    thresholds = common.configs(lambda: common.thresholds(args))
    from rfdiff_analysis import timescales_table as tt
    try:
        rows = tt.rows_from(args.results, thresholds)
    except ValueError as err:
        raise common.UsageError(str(err)) from None
    if not rows:
        raise common.UsageError("results: the runs hold no side to tabulate")
    print(tt.format_table(rows))
    if args.csv:
        from rfdiff import io
        text = tt.csv_text(rows)
        try:  # atomic, and never over a file created since the check unless --overwrite
            io.atomic_write(Path(args.csv), lambda fh: fh.write(text.encode()), overwrite=args.overwrite)
        except FileExistsError:
            raise common.UsageError(f"--csv: {args.csv} exists (pass --overwrite to replace it)") from None
        except ValueError as err:                     # replaced by a symlink or device since the check
            raise common.UsageError(f"--csv: {err}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
