"""Key-number tables of the studies: headline numbers of a typed summary, JSON-able, keyed for reading.

The library's summaries are typed (:mod:`rfdiff.pipelines`); the string keys and labels that a
person reads (n as text, "k1/3", τ labels) are made here.
"""
from __future__ import annotations

import warnings

import numpy as np

from rfdiff.pipelines.generation import GenerationSummary


def generation(s: GenerationSummary) -> dict:
    """Headline numbers of a summary (seed means; f_mem at k = ks[0]), JSON-able, keyed by n as strings."""
    ns = [str(int(n)) for n in s.n_values]
    F, Fs = s.fmem[:, :, 0].mean(axis=1), s.fmem_sym[:, :, 0].mean(axis=1)
    es = s.early_stopping
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN
        gen, loss = np.nanmean(s.gen_tau_mem, axis=1), np.nanmean(s.loss_tau_mem[:, :, 0], axis=1)
    out = {
        "tau_labels": ["inf" if not np.isfinite(t) else f"{t:.3g}" for t in s.taus],
        "fmem_k1/3_vs_tau": dict(zip(ns, F.tolist())),
        "fmem_sym_k1/3_vs_tau": dict(zip(ns, Fs.tolist())),
        "fmem_tau_inf_vs_n": dict(zip(ns, F[:, -1].tolist())),
        "kl_vs_tau": dict(zip(ns, s.kl.mean(axis=1).tolist())),
        "gen_tau_mem_vs_n": dict(zip(ns, gen.tolist())),
        "loss_tau_mem_smallest_t_vs_n": dict(zip(ns, loss.tolist())),
        "theory_tau_mem_smallest_t_vs_n": dict(zip(ns, s.theory_tau_mem[:, 0].tolist())),
        "emm": {k: np.asarray(v).tolist() for k, v in s.emm.items()},
        "early_stopping": {"c": es.c, "n0": es.n0, **{k: getattr(es, k).tolist() for k in
                                                       ("tau_stop", "kl_stop", "fmem_stop", "tau_best", "kl_best",
                                                        "fmem_best")}},
        "odd_activation": bool(s.odd_activation),
        "references": {"population_fmem_mean": float(np.mean(s.ref_pop_fmem)),
                       "empirical_fmem_mean": float(np.mean(s.ref_emp_fmem)),
                       "population_kl_mean": float(np.mean(s.ref_pop_kl)),
                       "empirical_kl_mean": float(np.mean(s.ref_emp_kl))},
    }
    if s.mixture is not None:
        out["mixture_fmem_vs_tau"] = {str(int(n)): s.mixture.fmem[i, 0].tolist() for i, n in enumerate(s.mixture.n)}
    if s.compare is not None:
        out["compare_activation"] = {"activation": s.compare.activation, "fmem_vs_tau": {
            str(int(n)): s.compare.fmem[i, 0].tolist() for i, n in enumerate(s.compare.n)}}
    return out
