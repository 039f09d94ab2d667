"""A table of τ_gen and τ_mem from saved main-job results, re-read with thresholds of your choice.

Each saved StudyResult's stored curves and spectra are re-read by the same rule on every side
(simulation, finite-d theory, d → ∞ theory; docs/theory.md §6.1–6.2): one row per run and side,
sorted by n, then p. A value that sits at an end of the τ grid is shown as the bound it is
(``< 0.1``, ``> 1e+07``). The command is ``rfdiff table`` (rfdiff_cli/table.py).
"""
from __future__ import annotations

import csv
import io as io_text
import math
from pathlib import Path

COLUMNS = ("tau_gen", "tau_mem", "tau_mem_abs", "min_score_error", "final_gap", "lambda_mem", "tau_mem_spectral")


def stems(paths) -> list[Path]:
    """The result stems named by ``paths`` (``run``, ``run.json`` or ``run.npz``), each once, in order."""
    out, seen = [], set()
    for path in paths:
        text = str(path)
        for suffix in (".json", ".npz"):
            if text.endswith(suffix):
                text = text[: -len(suffix)]
                break
        stem = Path(text)
        key = stem.resolve()
        if key not in seen:
            seen.add(key)
            out.append(stem)
    return out


def rows_from(paths, thresholds) -> list[dict]:
    """One row per (run, side): the timescales of its stored curves and spectrum under ``thresholds``.

    ``ValueError`` naming the file if one cannot be read or is not a main-job result. Each row also
    carries ``at_grid_end`` (the grid ends its values sit at) and ``tau_grid`` (τ_min, τ_max)."""
    from rfdiff import results, timescales
    from rfdiff.study import StudyResult
    rows = []
    for stem in stems(paths):
        try:
            res = results.load(stem)
        except results.CorruptResult as err:
            raise ValueError(f"results: cannot read {stem} ({err})") from None
        if not isinstance(res, StudyResult):
            raise ValueError(f"results: {stem} holds a {type(res).__name__}, not a main-job StudyResult")
        cfg = res.study.config
        for label, side in (("simulation", res.simulation), ("theory", res.theory), ("theory d→∞", res.theory_d_inf)):
            if side is None:
                continue
            ts = timescales.extract(side.curves, thresholds, side.spectrum, n=cfg.n, p=cfg.p, d=cfg.d, t=cfg.t)
            rows.append({"run": stem.name, "side": label, "d": cfg.d, "p": cfg.p, "n": cfg.n, "t": cfg.t,
                         **{c: getattr(ts, c) for c in COLUMNS}, "at_grid_end": ts.at_grid_end,
                         "tau_grid": (float(side.curves.tau[0]), float(side.curves.tau[-1]))})
    return sorted(rows, key=lambda r: (r["n"], r["p"], r["run"]))


def _fmt(x, digits: int = 4) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def cells(row: dict) -> dict:
    """The printed cells of a row: numbers, or the grid end a value sits at (``< τ_min``, ``> τ_max``, ``*``)."""
    ends, (lo, hi) = row["at_grid_end"], row["tau_grid"]
    out = {}
    for k, v in row.items():
        if k in ("at_grid_end", "tau_grid"):
            continue
        text = v if isinstance(v, str) else _fmt(v)
        if k + "<" in ends:
            text = f"< {_fmt(lo)}"
        elif k + ">" in ends:
            text = f"> {_fmt(hi)}" if k.startswith("tau") else f"{text}*"
        elif k == "tau_gen" and "min_score_error>" in ends:
            text += "*"
        out[k] = text
    return out


def format_table(rows) -> str:
    """The rows as aligned text, with a footnote when a value is only a bound at a grid end."""
    table = [cells(r) for r in rows]
    cols = list(table[0])
    widths = [max(len(c), *(len(t[c]) for t in table)) for c in cols]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(t[c].rjust(w) for c, w in zip(cols, widths)) for t in table]
    if any(r["at_grid_end"] for r in rows):
        lines.append("(< τ_min, > τ_max: the value sits at that end of the τ grid, a bound only; *: E_score still "
                     "falls at τ_max, so min E_score and τ_gen are not resolved: rerun with a wider τ grid)")
    return "\n".join(lines)


def csv_text(rows) -> str:
    """The rows as CSV (numbers in full; a value at a grid end is written as its bound, ``<0.1`` or ``>1e+07``)."""
    buf = io_text.StringIO(newline="")
    fields = [k for k in rows[0] if k not in ("at_grid_end", "tau_grid")]
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    for r in rows:
        lo, hi = r["tau_grid"]
        w.writerow({k: (f"<{lo:g}" if k + "<" in r["at_grid_end"] else
                        f">{hi:g}" if k + ">" in r["at_grid_end"] and k.startswith("tau") else r[k]) for k in fields})
    return buf.getvalue()
