#!/usr/bin/env python
"""Which numbers of two REPORT.md claims tables differ, row by row.

Example: python -m rfdiff_analysis.report_diff old/REPORT.md new/REPORT.md
Rows are matched by their claim text, else by that text with its numbers blanked out (then by
position among equal texts); columns by their names in each table's header. Every number of a row's cells is compared as printed, except in the
verdict, of which only the outcome (agree, disagree, inconclusive, …) is compared: its reason
restates the numbers in the rule's own words. Prints one line per difference (claim, column,
old → new) and the rows only one side has; exits 1 if anything differs.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

NUMBER = re.compile(r"[-−]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
def claims_header(text: str) -> list[str]:
    """The column names of the "## Claims" table (the first cell is "claim"; the verdict column is "verdict")."""
    inside = False
    for line in text.splitlines():
        if line.startswith("## "):
            inside = line.strip() == "## Claims"
            continue
        if inside and line.startswith("| claim |"):
            return [c.strip() for c in line.strip().strip("|").split(" | ")]
    return []


def claims_rows(text: str) -> list[list[str]]:
    """The cells of every row of the "## Claims" table, keyed by the header's column names."""
    rows, inside = [], False
    for line in text.splitlines():
        if line.startswith("## "):
            inside = line.strip() == "## Claims"
            continue
        if inside and line.startswith("| ") and not line.startswith("| claim |") and not line.startswith("|---"):
            rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    return rows


def numbers(cell: str) -> list[str]:
    return [x.replace("−", "-") for x in NUMBER.findall(cell)]


def _shape(claim: str) -> str:
    return NUMBER.sub("#", claim)


def _outcome(cell: str) -> str:
    return cell.split(":")[0].strip()


def diff(old_text: str, new_text: str) -> list[str]:
    """Lines describing every difference in the numbers (and verdict outcomes) of the two claims tables."""
    old, new = claims_rows(old_text), claims_rows(new_text)
    cols_old, cols_new = claims_header(old_text), claims_header(new_text)
    exact: dict = {}
    shaped: dict = {}
    for i, row in enumerate(new):
        exact.setdefault(row[0], []).append(i)
        shaped.setdefault(_shape(row[0]), []).append(i)
    out, used = [], set()
    pairs = []
    for row in old:                               # exact claim text first
        free = [j for j in exact.get(row[0], []) if j not in used]
        pairs.append(free[0] if free else None)
        if free:
            used.add(free[0])
    for i, row in enumerate(old):                 # then the same claim with other numbers
        if pairs[i] is None:
            free = [j for j in shaped.get(_shape(row[0]), []) if j not in used]
            if free:
                pairs[i] = free[0]
                used.add(free[0])
    for row, j in zip(old, pairs):
        if j is None:
            out.append(f"only in the old report: {row[0]}")
            continue
        cells_old, cells_new = dict(zip(cols_old, row)), dict(zip(cols_new, new[j]))
        for k in [c for c in cols_old if c in cells_new]:
            a, b = cells_old.get(k, ""), cells_new[k]
            if k == "verdict":
                if _outcome(a) != _outcome(b):
                    out.append(f"{row[0][:110]} | verdict: {_outcome(a)} → {_outcome(b)}")
            elif numbers(a) != numbers(b):
                out.append(f"{row[0][:110]} | {k.split(' (')[0]}: {a} → {b}")
    out += [f"only in the new report: {new[j][0]}" for j in range(len(new)) if j not in used]
    return out


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m rfdiff_analysis.report_diff OLD/REPORT.md NEW/REPORT.md", file=sys.stderr)
        return 2
    lines = diff(Path(args[0]).read_text(), Path(args[1]).read_text())
    print("\n".join(lines) if lines else "the numbers of the two claims tables are identical")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
