"""``rfdiff finite-d``: the finite-d train-loss theory against the exact model, the ingredient table (docs/theory.md §8.5).

For each rung (d, ψ_p, ψ_n, t) and seed: the exact model, the d → ∞ theory (Theorem 3.1), the
norm-spread correction (§4.5) and the conditional kernel deterministic equivalent (§8) on the same
training set (:mod:`rfdiff.pipelines.finite_d`). Results are cached one JSON per (rung, seed) in
--cache, so nothing is recomputed; the markdown table (docs/finite_size.md) goes to stdout, and to
--out if given (an existing --out is replaced only with --overwrite).

    rfdiff finite-d --rung 16,64,4,0.1 --rung 32,64,4,0.1 --seeds 5
    rfdiff finite-d --preset ingredient --seeds 3 --max-dim-inf 20000   # d = 32, 64, 100 at ψ_p = 64, ψ_n = 4, t = 0.1

Above --max-dim (kernel size n(d+1)) only τ → ∞ of the §8 equivalent is computed (eigenvalues and one
Cholesky factorisation), above --max-dim-inf nothing of it: the cell then gives the size and the
estimated cost instead.
"""
from __future__ import annotations

import argparse
import os
import sys

from rfdiff_cli import common

HEADER = ("| d | ψ_p | ψ_n | t | seeds | exact L_train(∞) (mean ± s.e.) | d → ∞ theory | + norm spread (§4.5) "
          "| conditional kernel, one nugget (§8) | + neuron-norm nugget types (§8) | §8 error at τ = 10², 10³, 10⁴, 10⁵ |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def _rung(text):
    """``d,psi_p,psi_n,t`` as (int, float, float, float); its values are checked by the library."""
    parts = text.split(",")
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"expected d,psi_p,psi_n,t (four comma-separated numbers), got {text!r}")
    try:
        return int(parts[0]), float(parts[1]), float(parts[2]), float(parts[3])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected d,psi_p,psi_n,t with d an integer, got {text!r}") from None


def parse_args(argv=None):
    ap = common.Parser(prog="rfdiff finite-d", description=__doc__.splitlines()[0])
    ap.add_argument("--rung", type=_rung, action="append", default=[],
                    help="d,psi_p,psi_n,t of one table row (repeat the flag for more rows)")
    ap.add_argument("--preset", choices=["ingredient"],
                    help="ingredient: the rows d = 32, 64, 100 at psi_p = 64, psi_n = 4, t = 0.1 (before any --rung)")
    ap.add_argument("--max-dim", type=int, help="largest kernel size n(d+1) whose §8 curve is computed "
                    "(default rfdiff.theory.finite_d.MAX_DIM_CURVES)")
    ap.add_argument("--max-dim-inf", type=int, help="largest kernel size n(d+1) whose §8 L_train(inf) is computed "
                    "(default rfdiff.theory.finite_d.MAX_DIM_INF)")
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0 .. SEEDS-1 per rung")
    ap.add_argument("--cache", default="/tmp/rfdiff_finite_d", help="folder of the per-(rung, seed) results")
    ap.add_argument("--out", help="also write the markdown table to this file")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error(f"argument --seeds: must be >= 1, got {args.seeds}")
    if not args.rung and not args.preset:
        ap.error("argument --rung: give at least one --rung or a --preset")
    for flag in ("max_dim", "max_dim_inf"):
        if getattr(args, flag) is not None and getattr(args, flag) < 0:
            ap.error(f"argument --{flag.replace('_', '-')}: must be >= 0, got {getattr(args, flag)}")
    if args.out and os.path.exists(args.out) and not args.overwrite:
        ap.error(f"argument --out: {args.out} exists (use --overwrite to replace it)")
    return args


def markdown(summaries) -> str:
    """The ingredient table: L_train(∞) of each ingredient against the exact seed mean, and the §8 error on the τ grid."""
    from rfdiff.theory.finite_d import kernel_cost
    rows = [HEADER]
    for s in summaries:
        r, m = s.rung, s.exact[-1]
        c = kernel_cost(r.n, r.d)
        missing = (f"not computed: n(d+1) = {c['N']}, ≈ {c['seconds_inf'] / 3600:.2g} h and {c['gib']:.2g} GiB "
                   "per seed (one core)")
        some = "" if s.de_seeds == s.seeds else f"; {s.de_seeds} seeds, against their exact mean {s.exact_on_de_seeds:.4f}"

        def cell(x, de=False):
            if x != x:
                return missing if de else "—"
            ref = s.exact_on_de_seeds if de else m
            return f"{x:.4f} ({100 * (x - ref) / ref:+.1f} %{some if de else ''})"
        errs = [(s.de_types[k] - s.exact[k]) / s.exact[k] for k in (1, 2, 3, 4)]
        mid = (", ".join(f"{100 * e:+.1f} %" for e in errs) if all(e == e for e in errs)
               else "— (τ → ∞ only)" if s.de_types[-1] == s.de_types[-1] else "—")
        rows.append(f"| {r.d} | {r.psi_p:g} | {r.psi_n:g} | {r.t:g} | {s.seeds} | {m:.4f} ± {s.exact_inf_se:.4f} | "
                    f"{cell(s.theory[-1])} | {cell(s.norm_corrected[-1])} | {cell(s.de_single[-1], de=True)} | "
                    f"{cell(s.de_types[-1], de=True)} | {mid} |")
    return "\n".join(rows) + "\n"


@common.guarded
def main(argv=None) -> int:
    args = parse_args(argv)
    from rfdiff.pipelines import finite_d
    rungs = list(finite_d.INGREDIENT_RUNGS) if args.preset == "ingredient" else []
    for values in args.rung:
        try:
            rungs.append(finite_d.Rung(*values))
        except ValueError as err:
            raise common.UsageError(f"--rung {','.join(f'{v:g}' for v in values)}: {err}") from None
    cache = common.writable_folder(args.cache, "--cache")
    text = markdown(finite_d.ingredient_table(rungs, args.seeds, str(cache), args.max_dim, args.max_dim_inf))
    if args.out:
        from rfdiff import io
        io.atomic_write(args.out, lambda fh: fh.write(text.encode()), overwrite=args.overwrite)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
