"""Figure of the finite-size study (rfdiff.pipelines.finite_size): plotting only, every number comes from its result."""
from __future__ import annotations

import numpy as np

from .plots import pyplot


def finite_size_figure(res):
    """Four panels from a :class:`rfdiff.pipelines.finite_size.FiniteSizeResult`.

    L_train and L_test errors of the theory against the exact model and against the GE draw vs n
    (main ψ_p), the GE-vs-exact error vs ψ_p/n over every point, and the curves of the largest d.
    """
    from rfdiff.pipelines.finite_size import MAIN_PSI_P

    plt = pyplot()
    rows = [g.row() for g in res.rows]
    fig, (ax, tx, px, bx) = plt.subplots(1, 4, figsize=(21, 4.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    main_pp = MAIN_PSI_P if any(r["psi_p"] == MAIN_PSI_P for r in rows) else max(r["psi_p"] for r in rows)
    main_rows = [r for r in rows if r["psi_p"] == main_pp]
    nn = np.array(sorted({r["n"] for r in main_rows}), float)
    for a, pre, what in ((ax, "", "L_train"), (tx, "test_", "L_test")):
        for k, psi_n in enumerate(sorted({r["psi_n"] for r in main_rows})):
            sel = sorted((r for r in main_rows if r["psi_n"] == psi_n), key=lambda r: r["n"])
            n = np.array([r["n"] for r in sel])
            c = colors[k % len(colors)]
            a.loglog(n, [r[pre + "theory_vs_exact"] for r in sel], "o-", color=c,
                     label=f"theory vs exact, ψ_n={psi_n:g}")
            if not pre:
                a.loglog(n, [r["theory_d_vs_exact"] for r in sel], "s--", color=c, ms=4, alpha=0.7,
                         label=f"finite-d theory vs exact, ψ_n={psi_n:g}")
            a.loglog(n, [r[pre + "theory_vs_ge"] for r in sel], "^:", color=c, ms=4, alpha=0.7,
                     label=f"theory vs GE draw, ψ_n={psi_n:g}")
        ref = max(r[pre + "theory_vs_exact"] * r["n"] for r in main_rows)
        a.loglog(nn, ref / nn, "k-", lw=0.8, alpha=0.5, label="∝ 1/n")
        a.axhline(0.02, color="r", lw=0.8, ls="--", label="2 %")
        a.set_xlabel("n (training points)")
        a.set_ylabel(f"max relative error of {what}, τ ≤ 100 τ_mem")
        a.set_title(f"{what}: theory (d → ∞) against finite d, ψ_p = {main_pp:g}")
    ax.legend(fontsize=6, ncol=1)
    for k, pp in enumerate(sorted({r["psi_p"] for r in rows})):
        sel = [r for r in rows if r["psi_p"] == pp]
        for psi_n, mk in zip(sorted({r["psi_n"] for r in sel}), "osD^v"):
            ss = [r for r in sel if r["psi_n"] == psi_n]
            px.loglog([r["psi_p"] / r["n"] for r in ss], [r["ge_vs_exact"] for r in ss], mk,
                      color=colors[k % len(colors)], ms=5, alpha=0.8, label=f"ψ_p={pp:g}, ψ_n={psi_n:g}")
    x = np.array(sorted(r["psi_p"] / r["n"] for r in rows))
    c = float(np.median([r["ge_vs_exact"] * r["n"] / r["psi_p"] for r in rows]))
    px.loglog(x, c * x, "k-", lw=0.8, alpha=0.6, label=f"{c:.2f} ψ_p/n")
    px.axhline(0.02, color="r", lw=0.8, ls="--")
    px.set_xlabel("ψ_p / n = p / (n d)")
    px.set_ylabel("max relative error, GE draw vs exact (L_train)")
    px.set_title("GE model vs exact: the gap grows with p at fixed n, d")
    px.legend(fontsize=6, ncol=2)
    g = max(res.rows, key=lambda g: (g.psi_p == main_pp, g.d, -g.psi_n))
    cu = g.curves
    for name, style, lab in [("exact", "k-", "exact finite d"), ("ge", "C2:", "GE draw (same W, X)"),
                             ("theory", "C0--", "theory d → ∞"), ("theory_d", "C1-.", "finite-d theory")]:
        bx.semilogx(cu[name].tau, cu[name].train_loss, style, label="train: " + lab)
    for name, style, lab in [("exact", "k-", "exact finite d"), ("ge", "C2:", "GE draw"),
                             ("theory", "C3--", "deterministic equivalent")]:
        bx.semilogx(cu[name].tau, cu[name].test_loss, style, lw=2 if name == "exact" else 1.2, alpha=0.6,
                    label="test: " + lab)
    bx.set_xlabel("τ")
    bx.set_ylabel("loss")
    bx.set_title(f"d = {g.d}, ψ_n = {g.psi_n:g}, ψ_p = {g.psi_p:g}")
    bx.legend(fontsize=7)
    fig.tight_layout()
    return fig
