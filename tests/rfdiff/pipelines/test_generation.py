"""rfdiff.pipelines.generation (docs/theory.md §5) at tiny sizes (the script: tests/cli/test_generation.py)."""
import dataclasses
import json
import math

import numpy as np
import pytest

from rfdiff import results
from rfdiff.pipelines import generation as G
from rfdiff.sweep import unit_key

INF = math.inf
TINY = dict(d=4, p=32, n_values=(4, 8), seeds=1, samples=64, steps=10, n_times=2, mixture_n=(), compare_n=(4,),
            taus=(1.0, 1e2, 1e4, INF), curve_taus=tuple(np.geomspace(0.1, 1e7, 12).tolist()), n_boot=100)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The study at d = 4, p = 32, n ∈ {4, 8}, 64 samples, 10 steps, 2 grid times, run serially (the mixture
    is left to the smoke test: its first compilation is the slowest part)."""
    study = G.GenerationStudy(**TINY)
    cache = tmp_path_factory.mktemp("generation_cache")
    ticks = []
    summary, reports = G.run(study, cache_dir=cache,
                             progress=lambda done, total: ticks.append((done, total)))
    return study, summary, reports, cache, ticks


def test_run_serial_summary_and_cache(tiny_run):
    """Shapes and ranges of the summary; τ_stop = c·n measured; a second run loads every unit from the cache."""
    study, s, reports, cache, ticks = tiny_run
    N, T, K = len(study.n_values), len(study.taus), len(study.ks)
    total = sum(len(r.results) for r in reports)
    assert total == 4 + 1 and ticks[-1] == (total, total) and [d for d, _ in ticks] == list(range(1, total + 1))
    assert sum(r.n_computed for r in reports) == total
    assert s.fmem.shape == (N, 1, K, T) and s.kl.shape == (N, 1, T) and s.loss_tau_mem.shape == (N, 1, 2)
    assert s.theory_tau_mem.shape == (N, 2) and s.gen_gap_seed0.shape == (N, 2, len(study.curve_taus))
    assert np.all((0 <= s.fmem) & (s.fmem <= 1)) and np.all(s.fmem_lo <= s.fmem + 1e-12)
    assert np.all(s.fmem <= s.fmem_hi + 1e-12)
    assert np.all(s.kl[:, :, -1] > 0) and np.all(np.isfinite(s.w2))
    assert np.all(s.ref_emp_fmem >= 0.7) and np.all(s.ref_pop_fmem <= 0.1)    # the exact empirical score memorises
    es = s.early_stopping
    assert es.tau_stop[1] == pytest.approx(es.c * 8) and es.tau_stop[0] == pytest.approx(es.c * 4)
    assert s.odd_activation and set(s.emm) == {"0.1", "0.5", "sym_0.1", "sym_0.5"}
    assert s.mixture is None and s.compare.fmem.shape == (1, K, T)
    assert s.compare.activation == "gelu" and list(s.compare.n) == [4]
    assert np.all(np.isnan(s.theory_tau_mem[0]))                       # n = d: no memorisation edge (§6.2)
    assert np.all(np.isfinite(s.theory_tau_mem[1]))
    s2, reports2 = G.run(study, cache_dir=cache)
    assert sum(r.n_loaded for r in reports2) == total and sum(r.n_computed for r in reports2) == 0
    for f in ("fmem", "fmem_sym", "kl", "w2", "loss_tau_mem", "theory_tau_mem", "gen_gap_seed0"):
        np.testing.assert_array_equal(getattr(s2, f), getattr(s, f))


def test_stop_column_and_theory(tiny_run):
    """τ_stop on a grid τ reproduces that column (common random numbers); theory = predict's ψ_p/(Δ_t λ_mem)."""
    from rfdiff.theory import predict
    from rfdiff.timescales import spectral_tau
    study, s, *_ = tiny_run
    r = G.run_unit(study.unit(4, 0, tau_stop=1e2))
    j = study.taus.index(1e2)
    for f in ("fmem", "fmem_lo", "fmem_hi", "fmem_sym"):
        np.testing.assert_allclose(getattr(r.stop, f), getattr(r, f)[:, j], rtol=0, atol=1e-12)
        np.testing.assert_allclose(getattr(r, f), getattr(s, f)[0, 0], rtol=0, atol=1e-12)
    for f in ("kl", "w2", "closer_train"):
        assert getattr(r.stop, f) == pytest.approx(getattr(r, f)[j], rel=1e-9)
        np.testing.assert_allclose(getattr(r, f), getattr(s, f)[0, 0], rtol=1e-9)
    t = float(s.grid_times[0])
    pred = predict("tanh", t, study.p / study.d, 8 / study.d)
    assert s.theory_tau_mem[1, 0] == pytest.approx(pred.tau_mem_spectral, rel=1e-12)
    lam = s.theory_lambda_mem[1, 0]
    assert s.theory_tau_mem[1, 0] == pytest.approx(spectral_tau(lam, study.p / study.d, t), rel=1e-12)


def _fake(unit, fmem0, kl, stop_kl=math.nan, stop_f=math.nan):
    """A GenerationResult with f_mem (k = 1/3) ``fmem0`` and KL ``kl`` over τ (other k: the same)."""
    T, K, g = len(unit.taus), len(unit.ks), unit.n_times
    f = np.tile(np.asarray(fmem0, dtype=float), (K, 1))
    def m(v, k):
        return G.Measurement(np.full(K, v), np.full(K, v), np.full(K, v), np.full(K, v), 0.5, k, k, 0.01, math.nan)

    return G.GenerationResult(unit, f, f - 0.01, f + 0.01, f, np.full(T, 0.5), np.asarray(kl, float), np.ones(T),
                              np.full(T, np.nan), None if unit.tau_stop is None else m(stop_f, stop_kl),
                              m(0.0, 0.02), m(0.97, 0.3), np.array([0.01, 5.0]), np.array([100.0, 200.0]),
                              np.ones(g), np.zeros((g, 3)), np.zeros((g, 3)), np.array([4, 4]))


def test_summarize_early_stopping_emm_roundtrip(tmp_path):
    """Calibration at the smallest n, τ_stop = c·n, EMM_ε, generation τ_mem; the summary saves and loads (§5.4–5.5)."""
    study = G.GenerationStudy(n_values=(4, 8, 16), seeds=2, n_times=2, taus=(1.0, 10.0, 100.0, 1000.0, INF),
                              compare_activation=None, mixture_n=(), curve_taus=(1.0, 10.0, 100.0))
    kl = [3.0, 1.0, 0.5, 0.7, 0.9]
    F = {4: [0.0, 0.05, 0.95, 1.0, 1.0], 8: [0.0, 0.0, 0.5, 0.95, 1.0], 16: [0.0, 0.0, 0.0, 0.5, 0.8]}
    # τ = 100 has the lowest KL but f_mem 0.95 > f_max at n = 4: τ* = 10, c = 10/4
    c, j = G.calibrate(study, [_fake(study.unit(4, s), F[4], kl) for s in range(2)])
    assert (c, j) == (2.5, 1)
    units = G.first_units(study) + G.second_units(study, c)
    assert [u.tau_stop for u in units if isinstance(u, G.GenerationUnit)] == [None, None, 20.0, 20.0, 40.0, 40.0]
    res = [_fake(u, F[u.n], kl, stop_kl=0.1 * u.n + u.rep, stop_f=0.01 * u.n)
           for u in units if isinstance(u, G.GenerationUnit)]
    res += [G.TheoryResult(u, np.array([0.01, 5.0]), np.ones(2), np.full(2, 7.0)) for u in study.theory_units()]
    with pytest.raises(ValueError, match="unit_results"):
        G.summarize(study, res[1:])
    s = G.summarize(study, res[::-1])
    es = s.early_stopping
    np.testing.assert_allclose(es.tau_stop, [10.0, 20.0, 40.0])
    np.testing.assert_allclose(es.kl_stop, [1.0, 1.3, 2.1])
    np.testing.assert_allclose(es.fmem_stop, [0.05, 0.08, 0.16])
    np.testing.assert_allclose(es.tau_best, [10.0, 10.0, 100.0])
    np.testing.assert_array_equal(s.emm["0.1"], [0, 0, 4, 8, 8])
    assert s.gen_tau_mem[1, 0] == pytest.approx(100.0) and s.gen_tau_mem[2, 1] == pytest.approx(100 * 10**0.8)
    from rfdiff_analysis.key_numbers import generation as key_numbers
    nums = key_numbers(s)
    json.dumps(nums)
    assert nums["fmem_tau_inf_vs_n"] == {"4": 1.0, "8": 1.0, "16": 0.8} and nums["early_stopping"]["c"] == 2.5
    results.save(s, tmp_path / "g")
    back = results.load(tmp_path / "g")
    assert isinstance(back, G.GenerationSummary) and back.study == study and back.compare is None
    np.testing.assert_array_equal(back.fmem, s.fmem)
    np.testing.assert_array_equal(back.early_stopping.kl_stop, es.kl_stop)


def test_configs_validate_and_hash():
    """Inputs are checked with ValueErrors naming the parameter (and its flag); unit configs hash stably."""
    from rfdiff_cli import common
    for kw, name in (({"n_values": (1, 4)}, "n"), ({"t_min": 5.0}, "t_min"), ({"compare_activation": "nope"},
                     "compare_activation"), ({"method": "heun"}, "method"), ({"taus": (1.0, 10.0)}, "taus"),
                     ({"seeds": 0}, "seeds"), ({"mu_norm": -1.0}, "mu_norm"), ({"f_max": 2.0}, "f_max"),
                     ({"n_times": 1}, "n_times"), ({"activation": "nope"}, "activation")):
        with pytest.raises(ValueError, match=f"^(unknown )?{name}"):
            G.GenerationStudy(**kw)
    with pytest.raises(common.UsageError, match="^--n: n must"):
        common.configs(lambda: G.GenerationStudy(n_values=(1, 4)))
    with pytest.raises(ValueError, match="^p must"):
        G.GenerationUnit(p=0)
    with pytest.raises(ValueError, match="^data must"):
        G.GenerationUnit(data=G.DataSpec("spectrum"))
    with pytest.raises(ValueError, match="^unit must"):
        G.compute_unit("not a unit")
    q = G.default_study(quick=True)
    assert (q.d, q.p, q.n_values, q.compare_n, q.mixture_n, len(q.taus)) == (8, 256, (4, 16, 64), (4,), (8, 32), 8)
    f = G.default_study(n_values=[8, 2, 4], p=None)
    assert f.n_values == (2, 4, 8) and f.compare_n == (2, 4) and f.p == 1024 and math.isinf(f.taus[-1])
    assert dataclasses.replace(f, compare_activation=None).compare_n == ()
    u = f.unit(4, 1)
    assert u == G.GenerationUnit(**{**dataclasses.asdict(u), "data": u.data, "taus": list(u.taus)})
    assert unit_key("k", u) == unit_key("k", results.from_payload(*results.to_payload(u)))
    assert len({unit_key("k", x) for x in (u, f.unit(4, 0), f.unit(4, 1, tau_stop=10), f.unit(4, 1, data="mixture"),
                                           f.unit(4, 1, activation="gelu"))}) == 5
    assert f.unit(4, 1, data="mixture").data.mu_norm == 3.0
