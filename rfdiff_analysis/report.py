#!/usr/bin/env python
"""figures/REPORT.md — every claim of the paper against our theory and simulation, with a verdict by one rule.

Example: python rfdiff_analysis/report.py figures
Reads the per-figure entries in <figdir>/manifest/ (written by rfdiff_cli/figures.py), applies
the verdict rule of rfdiff_analysis/verdict.py (docs/theory.md §6.4) and writes <figdir>/REPORT.md and
<figdir>/MANIFEST.json (all entries assembled).
"""
from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Optional

from rfdiff import io, results
from rfdiff.timescales import NAMES

from rfdiff_analysis import report_rows as rr
from rfdiff_analysis.report_rows import COLUMNS, FAILED_EXTRAPOLATION, Row
from rfdiff_analysis.verdict import AGREE, DISAGREE, INCONCLUSIVE


class MixedPresets(ValueError):
    """A figure folder whose manifest holds entries of more than one preset (e.g. quick and full)."""


def read_manifest(figdir) -> dict:
    """The per-figure entries of ``figdir/manifest/`` (assembled on read)."""
    out = {}
    for js in sorted((Path(figdir) / "manifest").glob("*.json")):
        try:
            entry, meta = results.load(js.with_suffix(""), with_meta=True)
        except results.CorruptResult:
            continue
        out[entry["figure"]] = {**entry, "meta": meta}
    return out


def preset_of(entry: dict) -> str:
    """The preset a manifest entry was computed at ("quick", "full", …)."""
    return str(entry.get("preset", entry.get("mode")))


def presets_in(figdir) -> dict:
    """``{preset: [figures]}`` of the entries in ``figdir/manifest/``."""
    out: dict = {}
    for name, entry in read_manifest(figdir).items():
        out.setdefault(preset_of(entry), []).append(name)
    return out


def check_one_preset(figdir, preset=None) -> None:
    """Raise :class:`MixedPresets` if ``figdir``'s manifest mixes presets, or holds another than ``preset``."""
    found = presets_in(figdir)
    other = sorted(set(found) - ({preset} if preset else set()))
    if len(found) > 1 or (preset and other):
        listed = "; ".join(f"{k}: {', '.join(sorted(v))}" for k, v in sorted(found.items()))
        raise MixedPresets(f"{Path(figdir) / 'manifest'} holds figures of another preset ({listed}); "
                           "a report never mixes presets: use another figure folder")


def _plain(x):
    """Dataclasses (the presets' sizes) as plain dicts, for MANIFEST.json."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return dataclasses.asdict(x)
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


FIGURE_ROWS = {"finite_size_scaling": rr.ladder_rows, "spectrum": rr.spectrum_rows, "learning_curves": rr.curves_rows,
               "min_score": rr.min_score_rows, "sigma_x": rr.sigma_x_rows, "adam": rr.adam_rows,
               "scaling": rr.scaling_rows, "phase": rr.phase_rows, "procedure": rr.procedure_rows}


def rows_from(F: dict) -> list:
    """The report's rows (:class:`rfdiff_analysis.report_rows.Row`) from the manifest entries (each figure's typed
    summary and sizes)."""
    rows = []
    for name, fn in FIGURE_ROWS.items():
        if name in F:
            rows += fn(F[name]["summary"], F[name].get("sizes"))
    return rows


def _numbers(r: Row) -> dict:
    v = r.verdict
    if v is None or isinstance(v, str):
        return {}
    e = v.estimate
    out = {"estimate": e.value, "lo": e.lo, "hi": e.hi, "reference": v.reference, "tolerance": v.tolerance}
    return {k: float(x) for k, x in out.items() if math.isfinite(float(x))}


def verdict_records(rows: list) -> list:
    """The rows as plain records (figures/VERDICTS.json): id, claim, parameters, verdict, evidence, numbers."""
    out = []
    for r in rows:
        v = r.verdict
        outcome = r.outcome if not isinstance(v, str) else ("no verdict (failed extrapolation)"
                                                             if r.outcome == FAILED_EXTRAPOLATION else "no verdict")
        if outcome == "description":
            continue
        reason = v if isinstance(v, str) else v.reason
        out.append({"id": r.id, "group": r.group, "claim": r.claim, "parameters": r.parameters, "verdict": outcome,
                    "evidence": reason.replace("**", ""), "numbers": _numbers(r)})
    return out


def summary_table(rows: list) -> list:
    """The one-screen table: per claim group, the count of each verdict and one line of evidence (the first
    disagreement, else the first inconclusive row, else the first row)."""
    groups: dict = {}
    for r in rows:
        if r.outcome != "description":
            groups.setdefault(r.group, []).append(r)
    lines = ["| claim | verdicts | one line of evidence |", "|---|---|---|"]
    order = (DISAGREE, INCONCLUSIVE, AGREE)
    for g, rs in groups.items():
        counts: dict = {}
        for r in rs:
            counts[r.outcome] = counts.get(r.outcome, 0) + 1
        pick = next((r for o in order for r in rs if r.outcome == o), rs[0])
        text = ", ".join(f"{counts[k]} {k}" for k in sorted(counts, key=lambda k: (k not in order, order.index(k)
                                                                                  if k in order else 0, k)))
        ev = f"`{pick.id}` [{pick.parameters}]: {pick.verdict_text}"
        lines.append("| " + " | ".join(c.replace("|", "∣") for c in (g, text, ev)) + " |")
    return lines


def write_report(figdir) -> Path:
    """Assemble ``figdir/REPORT.md``, ``figdir/VERDICTS.json`` and ``figdir/MANIFEST.json`` from ``figdir/manifest/``;
    :class:`MixedPresets` if the entries come from more than one preset."""
    figdir = Path(figdir)
    check_one_preset(figdir)
    F = read_manifest(figdir)
    man = {k: {kk: _plain(vv) for kk, vv in v.items() if kk != "summary"} for k, v in F.items()}
    io.save_json(figdir / "MANIFEST.json", {"figures": man})
    rows = rows_from(F)
    io.save_json(figdir / "VERDICTS.json", verdict_records(rows))
    modes = sorted({preset_of(v) for v in F.values()})
    tol_lines = [f"- **{k}**: {'±' if not why.startswith('relative') else ''}{tol:g}"
                 f"{' (' + str(round(100 * tol, 3)).rstrip('0').rstrip('.') + ' %)' if why.startswith('relative') else ''}"
                 f" — {why}" for k, (tol, why) in rr.TOLERANCES.items()]
    lines = ["# Reproduction report: Bonnaire, Urfin, Biroli, Mézard 2025 (random-features results)", "",
             f"Generated by `rfdiff_analysis/report.py` from the entries in `{figdir / 'manifest'}` "
             "(written by `rfdiff figures`). Do not edit by hand. The rows as data: `VERDICTS.json` beside this file.", "",
             f"Sizes: the {', '.join(modes)} preset.", "", "## In one screen", ""] + summary_table(rows) + [
             "", "## The rule", "",
             "Every quantity is read by the same rule from the simulated and the theoretical curves (docs/theory.md "
             "§6.1–6.2; timescale names as in the main job: " + ", ".join(sorted(set(NAMES.values()))) + "). Verdicts "
             "are an equivalence test (docs/theory.md §6.4, `rfdiff_analysis/verdict.py`): *agree* when the whole 95 % "
             "interval lies within the reference ± the tolerance, *disagree* when it lies wholly outside, *inconclusive* "
             "otherwise (an interval wider than the band never agrees). Seed means need at least 5 seeds "
             "(else *no verdict (k seeds)*); a value without an interval gets *no verdict (point)*; a theory's value is "
             "exact (its interval is the point). A power law is judged on its local slopes d log y / d log x at every "
             "point (seed means with delta-method intervals; the theory's exact): it agrees only where every slope "
             "agrees; a fitted exponent over the range is printed as a description. A d → ∞ extrapolation that comes "
             f"out non-positive for a positive quantity is marked *{FAILED_EXTRAPOLATION}* and not judged.", "",
             "Tolerances, each with why that size matters:", ""] + tol_lines + [
             "", "## Claims", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "∣") for c in r.cells()) + " |")
    lines += ["", "## Figures", "", "| figure | files | command |", "|---|---|---|"]
    for name, v in F.items():
        lines.append(f"| {name} | {', '.join(v.get('files', []))} | `{v.get('command')}` |")
    lines += _side_lines(figdir)
    out = figdir / "REPORT.md"
    io.atomic_write(out, lambda fh: fh.write(("\n".join(lines) + "\n").encode()))
    return out


SIDE_REPORTS = (("REPORT_maps.md", "MAPS"), ("REPORT_large_p.md", "LARGE_P"), ("REPORT_beyond.md", "BEYOND"))
"""The side reports REPORT.md embeds, each generated by its own command, with the tag of its marker."""


def _side_lines(figdir: Path) -> list:
    lines = []
    for name, tag in SIDE_REPORTS:
        side = figdir / name
        if side.exists():
            lines += ["", f"<!-- {tag}: {name} -->", "", side.read_text()]
    return lines


def embed_side_reports(figdir) -> Optional[Path]:
    """Rewrite the side reports' part of an existing ``figdir/REPORT.md`` from the side reports now in ``figdir``
    (what :func:`write_report` would write there), leaving the rest as it is; None when there is no REPORT.md.

    The command that regenerates a side report calls it, so REPORT.md never embeds a stale copy."""
    figdir = Path(figdir)
    out = figdir / "REPORT.md"
    if not out.exists():
        return None
    text = out.read_text()
    cuts = [i for i in (text.find(f"\n\n<!-- {tag}: ") for _, tag in SIDE_REPORTS) if i >= 0]
    main = text[:min(cuts)] if cuts else text.rstrip("\n")
    side = _side_lines(figdir)
    new = main + ("\n" + "\n".join(side) if side else "") + "\n"
    io.atomic_write(out, lambda fh: fh.write(new.encode()))
    return out


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    figdir = Path(args[0]) if args else Path("figures")          # the current folder's, never the installed package's
    try:
        print(write_report(figdir))
    except MixedPresets as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
