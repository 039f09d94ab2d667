"""``rfdiff maps``: where the theory obeys τ_mem ∝ ψ_n and τ_gen flat — maps of the local exponents over (ψ_p, ψ_n).

A sweep of :func:`rfdiff.theory.maps.run_map_unit` units (cached in ``--out``, resumable), then
``<figdir>/theory_maps.png/.pdf``, ``<figdir>/REPORT_maps.md`` and the maps themselves
(``<out>/theory_maps_<preset>.json/.npz``, :class:`rfdiff.theory.maps.TheoryMap`). Full grids: 558 points,
of which the 62 curve-based ones dominate (2–35 s each against 0.1–0.5 s for a spectral one); ``--quick``:
9 points. docs/theory.md §6.5.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from rfdiff_cli import common

FIGURE = "theory_maps"
SECTION = "REPORT_maps.md"


def parse_args(argv=None):
    ap = common.Parser(prog="rfdiff maps", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tiny grid (9 points)")
    ap.add_argument("--out", default="results/maps_cache", help="cache of the units and the saved maps")
    ap.add_argument("--figdir", default=None, help="where the figure and REPORT_maps.md go (default: figures, "
                                                   "or <out>/figures with --quick)")
    ap.add_argument("--tolerance", type=float, default=0.05,
                    help="a law holds where its local exponent is within this of the law's (default 0.05)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing figure, section and saved maps")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ap.add_argument("--no-compile-cache", action="store_true", help="do not use JAX's persistent compilation cache")
    common.add_sweep_flags(ap)
    args = ap.parse_args(argv)
    if not (args.tolerance > 0 and args.tolerance < 1):
        ap.error(f"--tolerance must be in (0, 1), got {args.tolerance}")
    return args


@common.guarded
def main(argv=None) -> int:
    t_all = time.perf_counter()
    args = parse_args(argv)
    cluster = common.cluster_from(args)
    preset = "quick" if args.quick else "full"
    out = common.writable_folder(args.out, "--out")
    figdir = common.writable_folder(args.figdir or (Path(args.out) / "figures" if args.quick else "figures"),
                                    "--figdir")
    common.check_figure(figdir, [FIGURE], args.overwrite)
    section = figdir / SECTION
    if section.exists() and not args.overwrite:
        raise common.UsageError(f"--figdir: {section} exists (use --overwrite to replace it)")
    stem = out / f"theory_maps_{preset}"
    common.setup(args)
    from rfdiff import sweep
    from rfdiff.theory import maps
    from rfdiff_analysis import plots_maps, report_maps
    units = maps.preset_units(preset)
    print(f"{len(units)} theory points ({preset} grids)", file=sys.stderr)
    with common.progress_bar(args, len(units), "points", "point") as bar, cluster.client() as client:
        rep = sweep.run_sweep(maps.run_map_unit, units, cache=sweep.Cache(out, "maps"), client=client,
                              progress=lambda done, total: bar.update(done - bar.n))
    for fail in rep.failures:
        print(f"unit failed: {fail.unit}\n{fail.traceback}", file=sys.stderr)
    common.report_warnings(rep)
    theory_maps = maps.assemble(rep.results)
    meta = common.run_metadata()
    common.save_result(theory_maps, stem, {**meta, "preset": preset, "tolerance": args.tolerance}, args.overwrite)
    files = plots_maps.draw(theory_maps, figdir / FIGURE, tolerance=args.tolerance)
    command = "rfdiff maps" + (" --quick" if args.quick else "")
    text = report_maps.section(theory_maps, tolerance=args.tolerance, command=command,
                               figure=f"{FIGURE}.png", failed=len(rep.failures))
    from rfdiff import io
    io.atomic_write(section, lambda fh: fh.write(text.encode()), overwrite=True)
    runtimes = [r for r in rep.runtimes if r is not None]
    print(f"{len(units)} points ({rep.n_computed} computed, {rep.n_loaded} from the cache, {len(rep.failures)} failed; "
          f"{sum(runtimes):.0f} s in the units) on {rep.backend} in {time.perf_counter() - t_all:.1f} s -> "
          f"{', '.join(str(f) for f in files)}, {section}")
    return 1 if rep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
