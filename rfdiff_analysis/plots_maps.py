"""The figure of the local-exponent maps: where the theory obeys τ_mem ∝ ψ_n and τ_gen flat (docs/theory.md §6.5)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

# the panels, in order: (quantity, column title)
PANELS = (("tau_mem", "τ_mem, curve-based"), ("tau_mem_spectral", "τ_mem, spectral (Thm 3.1 edge)"),
          ("tau_gen", "τ_gen, curve-based"), ("tau_gen_spectral_exact", "τ_gen, spectral (Thm 3.1 edge)"))


def _edges(x: np.ndarray) -> np.ndarray:
    """Cell edges of a log grid: geometric midpoints, the ends extended by half a step."""
    lx = np.log(x)
    if x.size == 1:
        return np.exp(lx[0] + np.array([-0.1, 0.1]))
    mid = 0.5 * (lx[1:] + lx[:-1])
    return np.exp(np.concatenate([[2 * lx[0] - mid[0]], mid, [2 * lx[-1] - mid[-1]]]))


def _outline(inside: np.ndarray, xe: np.ndarray, ye: np.ndarray) -> list:
    """Segments of the boundary of the cells marked ``inside`` (rows: y, columns: x)."""
    segs = []
    ny, nx = inside.shape
    pad = np.zeros((ny + 2, nx + 2), bool)
    pad[1:-1, 1:-1] = inside
    for i, j in zip(*np.nonzero(inside)):
        if not pad[i, j + 1]:          # below
            segs.append([(xe[j], ye[i]), (xe[j + 1], ye[i])])
        if not pad[i + 1, j + 2]:      # right
            segs.append([(xe[j + 1], ye[i]), (xe[j + 1], ye[i + 1])])
        if not pad[i + 2, j + 1]:      # above
            segs.append([(xe[j], ye[i + 1]), (xe[j + 1], ye[i + 1])])
        if not pad[i + 1, j]:          # left
            segs.append([(xe[j], ye[i]), (xe[j], ye[i + 1])])
    return segs


def draw(maps, stem, tolerance: float = 0.05, width: float = 0.5) -> list:
    """Draw ``stem``.png/.pdf: rows t, columns :data:`PANELS`; colour the local exponent ∂log τ/∂log ψ_n
    (centred on the law's exponent, ± ``width``), the region within ± ``tolerance`` outlined in black and
    its points dotted, the line ψ_n = ψ_p/2 dashed. Returns the files written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D
    ts = sorted({m.t for m in maps})
    by = {(m.t, m.quantity): m for m in maps}
    fig, axes = plt.subplots(len(ts), len(PANELS), figsize=(4.2 * len(PANELS), 3.4 * len(ts) + 0.6), squeeze=False)
    for r, t in enumerate(ts):
        for c, (q, title) in enumerate(PANELS):
            ax = axes[r, c]
            m = by.get((t, q))
            if m is None:
                ax.set_axis_off()
                continue
            X, Y = np.meshgrid(_edges(m.psi_n), _edges(m.psi_p))
            im = ax.pcolormesh(X, Y, np.ma.masked_invalid(m.slope), cmap="RdBu_r", vmin=m.exponent - width,
                               vmax=m.exponent + width, shading="flat")
            inside = m.holds(tolerance)
            ax.add_collection(LineCollection(_outline(inside, _edges(m.psi_n), _edges(m.psi_p)), colors="k",
                                             linewidths=1.5))
            ip, jn = np.nonzero(inside)
            ax.plot(m.psi_n[jn], m.psi_p[ip], "k.", ms=2.5)
            pp = np.geomspace(m.psi_p[0], m.psi_p[-1], 50)
            ax.plot(pp / 2, pp, "k--", lw=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.minorticks_off()
            ax.set_title(f"{title}, t = {t:g}", fontsize=9)
            ax.set_xlabel("ψ_n")
            if c == 0:
                ax.set_ylabel("ψ_p")
            fig.colorbar(im, ax=ax, label=f"∂log τ/∂log ψ_n (law: {m.exponent:g})", fraction=0.08, pad=0.03)
    handles = [Line2D([], [], color="k", lw=1.5, label=f"law holds within ±{tolerance:g} (outline)"),
               Line2D([], [], color="k", marker=".", ls="", label="grid points inside"),
               Line2D([], [], color="k", ls="--", lw=0.8, label="ψ_n = ψ_p/2 (edge of the map)")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8)
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.6 / fig.get_figheight() + 0.08, top=0.94, wspace=0.35,
                        hspace=0.45)
    stem = Path(stem)
    files = []
    for ext in ("png", "pdf"):
        path = stem.with_name(f"{stem.name}.{ext}")
        fig.savefig(path, dpi=130)
        files.append(path)
    plt.close(fig)
    return files
