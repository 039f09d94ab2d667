"""docs/results.md's short answer, written from the report's verdicts (figures/VERDICTS.json; docs/theory.md §6.4).

Example: python -m rfdiff_analysis.results_doc figures            # rewrite the block in docs/results.md
         python -m rfdiff_analysis.results_doc figures --check    # exit 1 if the committed block differs

VERDICTS.json is a list of rows (written by ``rfdiff_analysis/report.py``), each an object with the keys
``id`` (short, stable), ``claim``, ``parameters``, ``verdict`` (``"agree"``, ``"disagree"``,
``"inconclusive"`` or ``"no verdict (…)"``, the outcomes of the rule of docs/theory.md §6.4), ``evidence``
(one line) and ``numbers`` (``{name: float}``); other keys are ignored. The block between
:data:`BEGIN` and :data:`END` holds one line per row — claim, parameters, verdict, evidence — grouped
by verdict (agree, disagree, inconclusive, no verdict) and in the file's order within a group. It
copies the rows' text and adds no number of its own (its headings and notes hold no digit), so every
number in it is one the report wrote.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import sys
from pathlib import Path
from typing import Mapping, Sequence

BEGIN = "<!-- generated: verdicts -->"
END = "<!-- end generated -->"
FILENAME = "VERDICTS.json"
KEYS = ("id", "claim", "parameters", "verdict", "evidence", "numbers")
NO_VERDICT = "no verdict"
# (verdict, heading) in the order of the block; every "no verdict (…)" row falls in the last group
GROUPS = (("agree", "Agree"), ("disagree", "Disagree"), ("inconclusive", "Inconclusive"), (NO_VERDICT, "No verdict"))
NOTE = (f"<!-- written by `python -m rfdiff_analysis.results_doc` from {FILENAME}; do not edit by hand, "
        "rerun it after the report -->")


@dataclasses.dataclass(frozen=True)
class VerdictRow:
    """One claim of the report and its verdict, as VERDICTS.json holds it."""

    id: str
    claim: str
    parameters: str
    verdict: str
    evidence: str
    numbers: Mapping[str, float]

    @property
    def group(self) -> str:
        """The verdict's group: ``"agree"``, ``"disagree"``, ``"inconclusive"`` or ``"no verdict"``."""
        return NO_VERDICT if self.verdict.startswith(NO_VERDICT) else self.verdict


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _row(i: int, raw) -> VerdictRow:
    where = f"{FILENAME} row {i}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object with keys {', '.join(KEYS)}, got {type(raw).__name__}")
    missing = [k for k in KEYS if k not in raw]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
    where = f"{FILENAME} row {i} (id {raw['id']!r})"
    for k in KEYS[:-1]:
        if not isinstance(raw[k], str):
            raise ValueError(f"{where}: {k} must be a string, got {type(raw[k]).__name__}")
        if "<!--" in raw[k] or "-->" in raw[k]:
            raise ValueError(f"{where}: {k} must not contain an HTML comment marker")
    if not raw["id"].strip():
        raise ValueError(f"{where}: id must not be empty")
    verdict = _one_line(raw["verdict"])
    if verdict not in ("agree", "disagree", "inconclusive") and not verdict.startswith(NO_VERDICT):
        raise ValueError(f"{where}: verdict must be agree, disagree, inconclusive or 'no verdict (…)', "
                         f"got {verdict!r}")
    numbers = raw["numbers"]
    if not isinstance(numbers, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in numbers.items()):
        raise ValueError(f"{where}: numbers must be an object of name: number")
    return VerdictRow(_one_line(raw["id"]), _one_line(raw["claim"]), _one_line(raw["parameters"]), verdict,
                      _one_line(raw["evidence"]), {k: float(v) for k, v in numbers.items()})


def parse(data) -> tuple[VerdictRow, ...]:
    """Checked rows from VERDICTS.json's content (a list of rows; ``{"rows": [...]}`` is accepted too)."""
    if isinstance(data, dict) and "rows" in data:
        data = data["rows"]
    if not isinstance(data, list):
        raise ValueError(f"{FILENAME} must hold a list of rows, got {type(data).__name__}")
    rows = tuple(_row(i, raw) for i, raw in enumerate(data))
    seen: set = set()
    for r in rows:
        if r.id in seen:
            raise ValueError(f"{FILENAME}: id {r.id!r} appears more than once")
        seen.add(r.id)
    return rows


def load(figdir) -> tuple[VerdictRow, ...]:
    """The rows of ``figdir/VERDICTS.json`` (``FileNotFoundError`` if the report has not written it)."""
    return parse(json.loads((Path(figdir) / FILENAME).read_text(encoding="utf-8")))


def _line(r: VerdictRow) -> str:
    params = f" ({r.parameters})" if r.parameters else ""
    evidence = f" — {r.evidence}" if r.evidence else ""
    return f"- {r.claim}{params}: **{r.verdict}**{evidence} (`{r.id}`)"


def render(rows: Sequence[VerdictRow]) -> str:
    """The block, markers included: the rows grouped by verdict, one line each, nothing added but headings."""
    lines = [BEGIN, NOTE, ""]
    if not rows:
        lines += [f"*No rows in {FILENAME}.*", ""]
    for group, heading in GROUPS:
        members = [r for r in rows if r.group == group]
        if members:
            lines += [f"**{heading}**", "", *(_line(r) for r in members), ""]
    return "\n".join(lines + [END])


def _span(doc: str) -> tuple[int, int]:
    """Offsets of the block (markers included) in ``doc``; ``ValueError`` unless each marker is there once, in order."""
    for marker in (BEGIN, END):
        if doc.count(marker) != 1:
            raise ValueError(f"the document must hold the marker {marker!r} exactly once, found {doc.count(marker)}")
    start, end = doc.index(BEGIN), doc.index(END)
    if end < start:
        raise ValueError(f"the marker {END!r} comes before {BEGIN!r}")
    return start, end + len(END)


def committed_block(doc: str) -> str:
    """The block as the document holds it, markers included."""
    start, end = _span(doc)
    return doc[start:end]


def splice(doc: str, block: str) -> str:
    """``doc`` with its block replaced by ``block`` (markers included); everything else untouched."""
    start, end = _span(doc)
    return doc[:start] + block + doc[end:]


def difference(doc: str, rows: Sequence[VerdictRow]) -> list[str]:
    """The unified diff from the committed block to the one ``rows`` give (empty when they are equal)."""
    return list(difflib.unified_diff(committed_block(doc).splitlines(), render(rows).splitlines(),
                                     "committed", "generated", lineterm="", n=1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rfdiff_analysis.results_doc",
                                 description="Write docs/results.md's short answer from FIGDIR/VERDICTS.json.")
    ap.add_argument("figdir", nargs="?", default="figures", help="the report's folder (default: figures)")
    ap.add_argument("--doc", default="docs/results.md",
                    help="the document holding the block (default: docs/results.md)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if the committed block differs")
    args = ap.parse_args(argv)
    doc_path, source = Path(args.doc), Path(args.figdir) / FILENAME
    try:
        rows = load(args.figdir)
    except FileNotFoundError:
        print(f"error: {source}: no such file (the report writes it: python -m rfdiff_analysis.report "
              f"{args.figdir})", file=sys.stderr)
        return 2
    except ValueError as err:                       # json.JSONDecodeError is one
        print(f"error: {source}: {err}", file=sys.stderr)
        return 2
    try:
        doc = doc_path.read_text(encoding="utf-8")
        diff = difference(doc, rows)
    except FileNotFoundError:
        print(f"error: {doc_path}: no such file", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"error: {doc_path}: {err}", file=sys.stderr)
        return 2
    if args.check:
        if diff:
            print(f"{doc_path}: the generated block differs from what {source} gives "
                  f"(run: python -m rfdiff_analysis.results_doc {args.figdir} --doc {doc_path})", file=sys.stderr)
            print("\n".join(diff), file=sys.stderr)
            return 1
        print(f"{doc_path}: the generated block matches {source} ({len(rows)} rows)")
        return 0
    if not diff:
        print(f"{doc_path}: unchanged ({len(rows)} rows from {source})")
        return 0
    from rfdiff import io

    text = splice(doc, render(rows))
    io.atomic_write(doc_path, lambda fh: fh.write(text.encode("utf-8")))
    print(f"{doc_path}: block rewritten from {source} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
