"""The markdown section of the large-p study (figures/REPORT_large_p.md) from its summary, judged by the verdict rule.

Every number comes from a :class:`rfdiff.pipelines.large_p.LargePSummary`; every verdict from
:func:`verdict` (the one place that calls ``rfdiff_analysis.verdict``).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

from .verdict import judge

QUANTITY_NAMES = {"tau_mem": "τ_mem", "tau_gen": "τ_gen"}


def verdict(estimate, reference: float, tolerance: float):
    """The report's rule applied to a local exponent's extrapolation against the theory's (absolute tolerance)."""
    return judge(estimate, reference, tolerance=tolerance)


def _f(x, digits: int = 3) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _g(x, digits: int = 4) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def _within(d: float) -> str:
    if math.isinf(d):
        return "never (its limit is farther)"
    return _g(d, 3)


def _ci(e, fmt=_f) -> str:
    if not math.isfinite(e.value):
        return "—"
    if not (math.isfinite(e.lo) and math.isfinite(e.hi)):
        return f"{fmt(e.value)} (n = {e.n})"
    return f"{fmt(e.value)} [{fmt(e.lo)}, {fmt(e.hi)}]"


def approach_section(summary, quantity: str = "tau_mem") -> list[str]:
    """The section "What sets the approach": each pair's excess over the theory's local exponent against n of its
    smaller ψ_n (:func:`rfdiff.pipelines.large_p.approach`), and where the last measured slope would carry it."""
    from rfdiff.pipelines.large_p import approach, collapse_forecast
    rows = approach(summary, "exact", quantity)
    if not rows or max(len(a.ds) for a in rows) < 2:
        return []
    name = QUANTITY_NAMES[quantity]
    out = [f"## What sets the approach ({name}, exact model)", "",
           f"The exact model's local exponent minus the d → ∞ theory's, for each ψ_n pair, against n = ψ_n d of the "
           f"pair's smaller ψ_n (sorted by n: pairs at the same n and different d sit together). 95 % intervals. "
           f"If the excess depends on n alone, the other rungs foresee it: the last column is "
           f"`rfdiff.pipelines.large_p.collapse_forecast` with this row's rung left out (ln excess interpolated in "
           f"ln n over the other rungs' pairs, the end slope carried on beyond them; its interval carries their "
           f"intervals, not the rule's own error, which this column measures).", "",
           "| n | ψ_n pair | d | exponent − theory's | forecast from the other rungs (collapse in n) |",
           "|---|---|---|---|---|"]
    cells = sorted(((n, a.psi_n_lo, a.psi_n_hi, d, e, a.psi_p) for a in rows for n, d, e in zip(a.ns, a.ds, a.excess)),
                   key=lambda r: (r[0], r[1]))
    hits = []
    for n, lo, hi, d, e, pp in cells:
        f = collapse_forecast(summary, pp, n, exclude_d=d, quantity=quantity)
        if math.isfinite(f.lo) and math.isfinite(f.hi):
            hits.append(f.lo <= e.hi and e.lo <= f.hi)
            tag = " (intervals overlap)" if hits[-1] else " (missed)"
        else:
            tag = ""
        out.append(f"| {n:g} | {lo:g} → {hi:g} | {d} | {_ci(e)} | {_ci(f)}{tag} |")
    if hits:
        out += ["", f"Left out one rung at a time, the collapse in n foresees {sum(hits)} of {len(hits)} points "
                    f"(intervals overlap)."]
    out += ["", f"Carried on from the two largest d at the last measured slope d ln(excess)/d ln n (an extrapolation of "
                f"one slope, not a fit), the excess reaches the tolerance {summary.tolerance:g} at:", "",
            "| ψ_n pair | last slope | n | d |", "|---|---|---|---|"]
    for a in rows:
        if math.isnan(a.n_within):
            out.append(f"| {a.psi_n_lo:g} → {a.psi_n_hi:g} | — | — | — |")
        else:
            out.append(f"| {a.psi_n_lo:g} → {a.psi_n_hi:g} | {_f(a.last_slope, 2)} | {_g(a.n_within, 3)} | "
                       f"{_g(a.d_within, 3)} |")
    return out + [""]


def _holdout(S, x) -> str:
    """The forecast of the largest d's local exponent from the smaller d, beside its measured seed mean."""
    f = x.holdout_forecast
    if f is None or not math.isfinite(f.value):
        return "—"
    top = max(x.ds)
    got = [y for y in S.local_exponents if (y.model, y.psi_p, y.quantity, y.psi_n_lo, y.d) ==
           (x.model, x.psi_p, x.quantity, x.psi_n_lo, top)][0].value
    overlap = f.lo <= got.hi and got.lo <= f.hi
    return f"d = {top}: {_ci(f)}, {_ci(got)} ({'intervals overlap' if overlap else 'missed'})"


def answer(summary, quantity: str = "tau_mem") -> list[str]:
    """The answer as far as the data go: at the largest d of each ψ_p, exact and control against the theory."""
    S, name, out = summary, QUANTITY_NAMES[quantity], []
    for pp in sorted({x.psi_p for x in S.local_exponents}):
        loc = [x for x in S.local_exponents if (x.quantity, x.psi_p) == (quantity, pp)]
        ds = sorted({x.d for x in loc})
        top = max(ds)
        ex = sorted((x for x in loc if x.d == top and x.model == "exact"), key=lambda x: x.psi_n_lo)
        ge = sorted((x for x in loc if x.d == top and x.model == "ge"), key=lambda x: x.psi_n_lo)
        whole = {x.model: x for x in S.overall_exponents if (x.quantity, x.psi_p, x.d) == (quantity, pp, top)}
        pairs = ", ".join(f"{x.psi_n_lo:g}→{x.psi_n_hi:g}" for x in ex)
        text = (f"**{name}, ψ_p = {pp:g}.** At the largest d that ran (d = {top}; rungs d ∈ {{{', '.join(map(str, ds))}}}), "
                f"the exact model's local exponents ({pairs}) are {', '.join(_ci(x.value) for x in ex)} against the "
                f"theory's {', '.join(_f(x.theory) for x in ex)}")
        if ge:
            text += f"; the Gaussian-equivalent control on the same draws gives {', '.join(_ci(x.value) for x in ge)}"
        if "exact" in whole:
            w = whole["exact"]
            text += (f". Over ψ_n = {w.psi_n_lo:g} … {w.psi_n_hi:g} the exponent is {_ci(w.value)} (theory {_f(w.theory)}"
                     + (f", control {_ci(whole['ge'].value)}" if "ge" in whole else "") + ")")
        reached = [x for x in S.extrapolations if (x.quantity, x.psi_p, x.model) == (quantity, pp, "exact")
                   and x.d_within is not None]
        text += (". Seed mean within " + f"{S.tolerance:g} of the theory at every measured d from some d on: "
                 + (", ".join(f"{x.psi_n_lo:g}→{x.psi_n_hi:g} from d = {x.d_within}" for x in reached) or "no pair")
                 + ".")
        if len(ds) < 3:
            text += (f" With {len(ds)} rung{'s' if len(ds) > 1 else ''} the extrapolation in d cannot test the form of "
                     "the correction: these data do not say whether, or at what d, the exact model reaches the law.")
        out += [text, ""]
    return out


def forecasts(summary, rungs) -> list[str]:
    """The extrapolations' forecast of each local exponent at the rungs not yet simulated (from the rungs that ran)."""
    from rfdiff.pipelines.large_p import forecast
    S, out = summary, []
    fitted = sorted((x for x in S.extrapolations if math.isfinite(x.fit.a.value)),
                    key=lambda x: (x.model, x.psi_p, x.psi_n_lo))
    if not fitted or not rungs:
        return out
    out += ["The extrapolations' forecast of the local exponents at those rungs (`rfdiff.pipelines.large_p.forecast`: "
            "the fit a + b d^-γ of the rungs that ran, evaluated at the new d, with its 95 % interval), beside the "
            "theory's; when a rung lands its measured exponent is set against this:", "",
            "| quantity | model | ψ_p | d | ψ_n pair | forecast | theory d → ∞ |", "|---|---|---|---|---|---|---|"]
    for q in ("tau_mem", "tau_gen"):
        for x in (x for x in fitted if x.quantity == q):
            for r in rungs:
                if r.psi_p == x.psi_p:
                    out.append(f"| {QUANTITY_NAMES[q]} | {x.model} | {x.psi_p:g} | {r.d} | {x.psi_n_lo:g} → "
                               f"{x.psi_n_hi:g} | {_ci(forecast(S, x.model, x.psi_p, q, x.psi_n_lo, r.d))} | "
                               f"{_f(x.theory)} |")
    return out + [""]


def collapse_forecasts(summary, rungs, quantity: str = "tau_mem") -> list[str]:
    """The collapse in n's forecast of each pair's excess at the rungs not yet simulated, and the exponent it implies
    (the theory's plus the excess), from every rung that ran (:func:`rfdiff.pipelines.large_p.collapse_forecast`)."""
    from rfdiff.pipelines.large_p import approach, collapse_forecast
    rows = [a for a in approach(summary, "exact", quantity) if len(a.ds) >= 2]
    if not rows or not rungs:
        return []
    theory = {(x.psi_p, x.psi_n_lo): x.theory for x in summary.local_exponents
              if (x.model, x.quantity) == ("exact", quantity)}
    out = [f"The collapse in n's forecast at those rungs (`rfdiff.pipelines.large_p.collapse_forecast` over every rung "
           f"that ran: the exact model's excess over the theory's {QUANTITY_NAMES[quantity]} exponent read off at "
           f"n = ψ_n d, if it depends on n alone), and the local exponent it implies:", "",
           "| ψ_p | d | ψ_n pair | n | excess forecast | exponent forecast | theory d → ∞ |", "|---|---|---|---|---|---|---|"]
    for r in rungs:
        for a in (a for a in rows if a.psi_p == r.psi_p):
            n = a.psi_n_lo * r.d
            f = collapse_forecast(summary, a.psi_p, n, quantity=quantity)
            t = theory[(a.psi_p, a.psi_n_lo)]
            implied = type(f)(f.value + t, f.lo + t, f.hi + t, f.level, f.n, f.method)
            out.append(f"| {a.psi_p:g} | {r.d} | {a.psi_n_lo:g} → {a.psi_n_hi:g} | {n:g} | {_ci(f)} | {_ci(implied)} | "
                       f"{_f(t)} |")
    return out + [""]


def predictions(rungs, summary=None) -> list[str]:
    """The section "Predictions for the rungs not yet simulated" from :func:`rfdiff.pipelines.large_p.predict_missing`'s
    rungs (and, with ``summary``, the extrapolations' forecasts for them: :func:`forecasts`)."""
    if not rungs:
        return []
    out = ["## Predictions for the rungs not yet simulated", "",
           "Written before the simulation: for each planned rung whose units are not all in the cache, the d → ∞ "
           "theory (Theorem 3.1) and the finite-d theory (Theorem 3.1 with the norm correction, docs/theory.md §4.5), "
           "computed by `rfdiff.pipelines.large_p.predict_rung` — the same curves, grid and reading rule as the "
           "theory columns of the tables below, so a prediction equals the theory column its rung will carry. "
           "When a rung lands, the tables below compare these numbers with the measurement; no simulation of "
           "these rungs entered this section.", ""]
    for q in ("tau_mem", "tau_gen"):
        name = QUANTITY_NAMES[q]
        out += [f"{name} predicted (t = {rungs[0].t:g}):", "",
                "| ψ_p | d | ψ_n | theory d → ∞ | finite-d theory |", "|---|---|---|---|---|"]
        for r in rungs:
            for x in sorted((x for x in r.points if x.quantity == q), key=lambda x: x.psi_n):
                out.append(f"| {x.psi_p:g} | {x.d} | {x.psi_n:g} | {_g(x.theory)} | {_g(x.theory_finite_d)} |")
        out += ["", f"Predicted local exponents of {name} in n:", "",
                "| ψ_p | d | ψ_n pair | theory d → ∞ | finite-d theory |", "|---|---|---|---|---|"]
        for r in rungs:
            for x in sorted((x for x in r.local_exponents if x.quantity == q), key=lambda x: x.psi_n_lo):
                out.append(f"| {x.psi_p:g} | {x.d} | {x.psi_n_lo:g} → {x.psi_n_hi:g} | {_f(x.theory)} | "
                           f"{_f(x.theory_finite_d)} |")
            pns = sorted(x.psi_n for x in r.points if x.quantity == q)
            for q2, ti, tf in r.overall_exponents:
                if q2 == q:
                    out.append(f"| {r.psi_p:g} | {r.d} | {pns[0]:g} … {pns[-1]:g} (least squares) | {_f(ti)} | {_f(tf)} |")
        out.append("")
    if any(r.train_loss_inf for r in rungs):
        out += ["Finite-d train loss L_train(∞) (docs/theory.md §8, `rfdiff.theory.finite_d.finite_d_column`):", "",
                "| ψ_p | d | ψ_n | L_train(∞) | source |", "|---|---|---|---|---|"]
        for r in rungs:
            for pn, v, src in r.train_loss_inf:
                out.append(f"| {r.psi_p:g} | {r.d} | {pn:g} | {_g(v, 5)} | {src} |")
        out.append("")
    if summary is not None:
        out += forecasts(summary, rungs) + collapse_forecasts(summary, rungs)
    out += ["Cost of these predictions (wall seconds when this report was written, on whatever else that machine was running): "
            + "; ".join(f"d = {r.d}: theory columns {r.seconds_theory:.1f} s"
                        + (f", L_train(∞) {r.seconds_train_loss:.1f} s" if r.train_loss_inf else "") for r in rungs)
            + ".", ""]
    return out


def section(summary, *, command: str, timing_lines: Sequence[str] = (), not_run: Optional[str] = None,
            predicted: Sequence = ()) -> str:
    """The markdown of figures/REPORT_large_p.md: per-d tables, local exponents, extrapolations with verdicts,
    then the predictions for the rungs not yet simulated (``predicted``: :class:`rfdiff.pipelines.large_p.RungPrediction`)."""
    S = summary
    out = ["# τ_mem ∝ n at p ≫ n on the finite network (large-p study)", "",
           f"Generated by `{command}` from the cache; every number below is read from the summary "
           "(`rfdiff.pipelines.large_p.summarize`). The method: docs/finite_size.md, \"The large-p study\".", ""]
    ds = sorted({lab.d for lab in S.labels})
    out += [f"Ran: ψ_p ∈ {{{', '.join(f'{p:g}' for p in sorted({lab.psi_p for lab in S.labels}))}}}, "
            f"d ∈ {{{', '.join(map(str, ds))}}}, ψ_n ∈ {{{', '.join(f'{x:g}' for x in sorted({lab.psi_n for lab in S.labels}))}}}, "
            f"seeds per d: {', '.join(f'{d}: {len({x.seed for x in S.labels if x.d == d})}' for d in ds)}, "
            f"models {', '.join(sorted({lab.model for lab in S.labels}))} "
            f"({len(S.labels)} units). Exact-model route per d: "
            + ", ".join(f"d = {d} ({r})" for d, _, r in S.routes) + ".", ""]
    out += ["## Answer, as far as these data go", ""] + answer(S, "tau_mem") + answer(S, "tau_gen")
    if not_run:
        out += [not_run, ""]
    if timing_lines:
        out += ["## Cost", ""] + list(timing_lines) + [""]
    for q in ("tau_mem", "tau_gen"):
        name = QUANTITY_NAMES[q]
        out += [f"## {name}", "", f"Seed means with 95 % intervals; excess = exact / d → ∞ theory (per seed).", ""]
        for pp in sorted({x.psi_p for x in S.points}):
            out += [f"ψ_p = {pp:g}:", "", "| d | ψ_n | exact | excess | GE control | GE excess | theory d → ∞ | finite-d theory |",
                    "|---|---|---|---|---|---|---|---|"]
            for x in sorted((x for x in S.points if x.quantity == q and x.psi_p == pp and x.model == "exact"),
                            key=lambda x: (x.d, x.psi_n)):
                try:
                    ge = S.point("ge", pp, x.d, x.psi_n, q)
                    gv, gx = _ci(ge.value, _g), _ci(ge.excess, _f)
                except KeyError:
                    gv = gx = "—"
                out.append(f"| {x.d} | {x.psi_n:g} | {_ci(x.value, _g)} | {_ci(x.excess)} | {gv} | {gx} | "
                           f"{_g(x.theory)} | {_g(x.theory_finite_d)} |")
            out += ["", f"Local exponents of {name} in n (between neighbouring ψ_n, paired by seed):", "",
                    "| d | ψ_n pair | exact | GE control | theory d → ∞ | finite-d theory |", "|---|---|---|---|---|---|"]
            loc = [x for x in S.local_exponents if x.quantity == q and x.psi_p == pp and x.model == "exact"]
            for x in sorted(loc, key=lambda x: (x.d, x.psi_n_lo)):
                ge = [y for y in S.local_exponents if (y.model, y.quantity, y.psi_p, y.d, y.psi_n_lo) ==
                      ("ge", q, pp, x.d, x.psi_n_lo)]
                out.append(f"| {x.d} | {x.psi_n_lo:g} → {x.psi_n_hi:g} | {_ci(x.value)} | "
                           f"{_ci(ge[0].value) if ge else '—'} | {_f(x.theory)} | {_f(x.theory_finite_d)} |")
            for x in sorted((x for x in S.overall_exponents if x.quantity == q and x.psi_p == pp
                             and x.model == "exact"), key=lambda x: x.d):
                ge = [y for y in S.overall_exponents if (y.model, y.quantity, y.psi_p, y.d) == ("ge", q, pp, x.d)]
                out.append(f"| {x.d} | {x.psi_n_lo:g} … {x.psi_n_hi:g} (least squares) | {_ci(x.value)} | "
                           f"{_ci(ge[0].value) if ge else '—'} | {_f(x.theory)} | {_f(x.theory_finite_d)} |")
            out += ["", f"Extrapolation in d (`fit_finite_size`, a + b d^-γ over every (d, seed)), against the "
                        f"theory's local exponent; verdict by the report's rule with tolerance {S.tolerance:g}:", "",
                    "| model | ψ_n pair | d → ∞ (a) | fit | theory | verdict | measured within "
                    f"{S.tolerance:g} from d | fit within {S.tolerance:g} from d | largest d: forecast from the "
                    "smaller d, measured |",
                    "|---|---|---|---|---|---|---|---|---|"]
            for x in sorted((x for x in S.extrapolations if x.quantity == q and x.psi_p == pp),
                            key=lambda x: (x.model != "exact", x.psi_n_lo)):
                v = verdict(x.fit.a, x.theory, x.tolerance)
                few = " (2 d: the form of the correction is not tested)" if len(x.ds) == 2 else ""
                if x.form_rejected:
                    outcome = (f"**no verdict** (the form is rejected: lack-of-fit p = {x.fit.lack_of_fit_p:.1g}; "
                               f"{v.outcome} if it held)")
                else:
                    outcome = f"**{v.outcome}**{few}"
                fit = (f"γ = {x.fit.gamma:g}" + (f" + γ₂ = {x.fit.gamma2:g}" if x.fit.gamma2 else "") +
                       f", {x.fit.n_points} pts, d ∈ [{x.fit.n_range[0]:g}, {x.fit.n_range[1]:g}]"
                       + (f", lack-of-fit p = {x.fit.lack_of_fit_p:.2g}" if math.isfinite(x.fit.lack_of_fit_p) else "")) \
                    if math.isfinite(x.fit.a.value) else f"no fit ({len(x.ds)} d)"
                out.append(f"| {x.model} | {x.psi_n_lo:g} → {x.psi_n_hi:g} | {_ci(x.fit.a)} | {fit} | "
                           f"{_f(x.theory)} | {outcome} | {x.d_within if x.d_within is not None else 'not reached'} | "
                           f"{'— (form rejected)' if x.form_rejected else _within(x.d_within_fit)} | "
                           f"{_holdout(S, x)} |")
            out.append("")
    out += approach_section(S)
    out += predictions(tuple(predicted), S)
    return "\n".join(out) + "\n"
