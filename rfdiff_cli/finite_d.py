"""``rfdiff finite-d``: the finite-d train-loss theory against the exact model, the ingredient table (docs/theory.md §8.5).

For each rung (d, ψ_p, ψ_n, t) and seed: the exact model, the d → ∞ theory (Theorem 3.1), the
norm-spread correction (§4.5) and the conditional kernel deterministic equivalent (§8) on the same
training set (:mod:`rfdiff.pipelines.finite_d`). Results are cached one JSON per (rung, seed) in
--cache, so nothing is recomputed; the markdown table (docs/finite_size.md) goes to stdout, and to
--out if given (an existing --out is replaced only with --overwrite).

    rfdiff finite-d --rung 16,64,4,0.1 --rung 32,64,4,0.1 --seeds 5
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
    ap.add_argument("--rung", type=_rung, action="append", required=True,
                    help="d,psi_p,psi_n,t of one table row (repeat the flag for more rows)")
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0 .. SEEDS-1 per rung")
    ap.add_argument("--cache", default="/tmp/rfdiff_finite_d", help="folder of the per-(rung, seed) results")
    ap.add_argument("--out", help="also write the markdown table to this file")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error(f"argument --seeds: must be >= 1, got {args.seeds}")
    if args.out and os.path.exists(args.out) and not args.overwrite:
        ap.error(f"argument --out: {args.out} exists (use --overwrite to replace it)")
    return args


def markdown(summaries) -> str:
    """The ingredient table: L_train(∞) of each ingredient against the exact seed mean, and the §8 error on the τ grid."""
    rows = [HEADER]
    for s in summaries:
        r, m = s.rung, s.exact[-1]

        def cell(x, ref=m):
            return f"{x:.4f} ({100 * (x - ref) / ref:+.1f} %)"
        mid = ", ".join(f"{100 * (s.de_types[k] - s.exact[k]) / s.exact[k]:+.1f} %" for k in (1, 2, 3, 4))
        rows.append(f"| {r.d} | {r.psi_p:g} | {r.psi_n:g} | {r.t:g} | {s.seeds} | {m:.4f} ± {s.exact_inf_se:.4f} | "
                    f"{cell(s.theory[-1])} | {cell(s.norm_corrected[-1])} | {cell(s.de_single[-1])} | "
                    f"{cell(s.de_types[-1])} | {mid} |")
    return "\n".join(rows) + "\n"


@common.guarded
def main(argv=None) -> int:
    args = parse_args(argv)
    from rfdiff.pipelines import finite_d
    rungs = []
    for values in args.rung:
        try:
            rungs.append(finite_d.Rung(*values))
        except ValueError as err:
            raise common.UsageError(f"--rung {','.join(f'{v:g}' for v in values)}: {err}") from None
    cache = common.writable_folder(args.cache, "--cache")
    text = markdown(finite_d.ingredient_table(rungs, args.seeds, str(cache)))
    if args.out:
        from rfdiff import io
        io.atomic_write(args.out, lambda fh: fh.write(text.encode()), overwrite=args.overwrite)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
