"""One unit of work (rfdiff.study): options, route choice, and the run itself in float64 without global x64."""
import json
import math
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rfdiff import study
from rfdiff.model import DataSpec, RFConfig

fast = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(tau_min=st.floats(allow_nan=True, allow_infinity=True), tau_max=st.floats(allow_nan=True, allow_infinity=True),
       n_tau=st.integers(-5, 300))
@example(tau_min=1.0, tau_max=1.7976931348622105e308, n_tau=2)      # logspace overflowed to inf here
@example(tau_min=1.0, tau_max=1.0000000000000002, n_tau=3)          # points not distinct in float64
def test_tau_grid_is_valid_or_refused_by_name(tau_min, tau_max, n_tau):
    try:
        g = study.TauGrid(tau_min, tau_max, n_tau)
    except ValueError as err:
        assert str(err).split()[0] in ("tau_min", "tau_max", "n_tau")
    else:
        v = g.values()
        assert np.all(np.isfinite(v)) and np.all(np.diff(v) > 0)


@fast
@given(eta=st.floats(allow_nan=True), method=st.text(max_size=6), lt=st.floats(allow_nan=True))
def test_study_options_are_valid_or_refused_by_name(eta, method, lt):
    try:
        study.StudyOptions(eta=eta, method=method, lanczos_tol=lt)
    except ValueError as err:
        assert str(err).split()[0] in ("eta", "method", "lanczos_tol")


def _order(cfg):
    """The Mehler order the training plan of ``cfg`` chooses (what the route is sized with beyond the budget)."""
    from rfdiff import matrices
    from rfdiff.model import draw
    dr = draw(cfg)
    return matrices.train_order(dr.W, dr.X, cfg.t)


def test_auto_route_by_size_and_memory():
    """On CPU: dense eigendecomposition up to p = 3000, then Krylov while U fits, then streamed; a route that
    does not fit is refused naming p."""
    if jax.default_backend() != "cpu":
        pytest.skip("the size rule is the CPU one")
    big = 1 << 40
    assert study.choose_method(RFConfig(d=64, p=2048, n=256), memory=big) == "dense"
    assert study.choose_method(RFConfig(d=64, p=4096, n=512), memory=big) == "lanczos"
    # few, wide blocks (small d): one eigendecomposition beats a Krylov basis of about p/2
    assert study.choose_method(RFConfig(d=8, p=4096, n=512), memory=big) == "dense"
    cfg = RFConfig(d=64, p=16384, n=512)
    K = _order(cfg)           # a route that does not fit the order-12 budget is sized with the plan's own order
    lean = study.memory_estimate(16384, 512, 64, "streamed", spectrum="none", max_order=K)
    assert study.choose_method(cfg, memory=lean, spectrum="none") == "streamed"
    # with U formed the edges cost no more memory than the streamed route's top-n Lanczos: Krylov is taken
    assert study.memory_estimate(16384, 512, 64, "lanczos") < study.memory_estimate(16384, 512, 64, "streamed")
    with pytest.raises(ValueError, match="^p=16384"):
        study.choose_method(cfg, "dense", memory=big // 1024)
    assert study.memory_estimate(1000, 10, 10, "dense") > study.memory_estimate(1000, 10, 10, "lanczos")
    with pytest.raises(ValueError, match="method"):
        study.memory_estimate(10, 10, 10, "eigh")


def test_resolve_names_the_route_actually_used():
    """``resolve`` replaces "auto" by a concrete route and spectrum (what a cache key must name): it depends on the
    memory given, is idempotent, counts the τ grid in the memory, and the GE control is always dense/exact."""
    if jax.default_backend() != "cpu":
        pytest.skip("the size rule is the CPU one")
    big = 1 << 40
    cfg = RFConfig(d=64, p=16384, n=1024)
    o = study.resolve(cfg, study.StudyOptions(), memory=big)
    assert (o.method, o.spectrum) == ("lanczos", "edges")
    assert study.resolve(cfg, o, memory=big) == o
    lean = study.memory_estimate(16384, 1024, 64, "streamed", n_tau=162, spectrum="slq", max_order=_order(cfg))
    assert study.resolve(cfg, study.StudyOptions(spectrum="slq"), memory=lean).method == "streamed"
    assert (study.resolve(RFConfig(d=64, p=4096, n=512), memory=big).spectrum) == "exact"
    assert study.resolve(RFConfig(d=16, p=256, n=64), study.StudyOptions(model="ge")).method == "dense"
    assert study.resolve(cfg, study.StudyOptions(spectrum="slq"), memory=big).spectrum == "slq"
    with pytest.raises(ValueError, match="^spectrum"):
        study.resolve(cfg, study.StudyOptions(method="streamed", spectrum="exact"), memory=big)
    # the τ grid is in the estimate: its output curves, and the (sliced) evaluation arrays
    small, fine = (study.memory_estimate(4096, 512, 64, "lanczos", n_tau=k) for k in (162, 100_000_001))
    assert fine - small >= 8 * 8 * 100_000_000
    with pytest.raises(ValueError, match="^n_tau must be in"):     # bounded before any memory is sized
        study.TauGrid(0.1, 1e7, 100_000_000)
    cost = study.route_cost(cfg, study.StudyOptions())
    assert cost["total"] == pytest.approx(sum(cost[k] for k in ("matrices", "dynamics", "spectrum", "curves")))


@pytest.fixture(scope="module")
def edge_pair():
    """d = 8, p = 512, n = 32 (ψ_p = 64, ψ_n = 4): the dense route and the Krylov route with the "edges" spectrum."""
    cfg = RFConfig(d=8, p=512, n=32, n_emp=256)
    taus = study.TauGrid(0.1, 1e7, 41)
    dense = study.run(cfg, study.StudyOptions(taus=taus, method="dense", theory=False))
    edges = study.run(cfg, study.StudyOptions(taus=taus, method="lanczos", spectrum="edges", theory=False))
    return dense, edges


def test_edges_route_agrees_with_dense(edge_pair):
    """Curves, τ_gen, τ_mem and the spectral edges (λ_mem = n-th, λ_mem_upper = (d+1)-th, λ_pop = d-th largest
    eigenvalue) of the Krylov route with the top-eigenvalue spectrum equal the dense route's to 1e-6 relative."""
    dense, edges = edge_pair
    assert edges.diagnostics["spectrum_method"] == "edges" and edges.diagnostics["spectrum"]["converged"]
    for k in ("train_loss", "test_loss", "gen_gap", "score_error"):
        a, b = getattr(dense.simulation.curves, k), getattr(edges.simulation.curves, k)
        assert np.max(np.abs(b - a) / np.abs(a)) <= 1e-6, k
    for k in ("tau_gen", "tau_mem", "lambda_mem", "lambda_mem_upper", "lambda_pop", "tau_mem_spectral",
              "tau_gen_spectral"):
        a, b = getattr(dense.simulation.timescales, k), getattr(edges.simulation.timescales, k)
        assert math.isfinite(a) and abs(b - a) <= 1e-6 * abs(a), (k, a, b)
    lam = np.sort(dense.simulation.spectrum.nodes)[::-1]
    bounds = edges.diagnostics["spectrum"]["edges"]
    assert bounds["lambda_mem"]["value"] == pytest.approx(lam[31], rel=1e-6)
    assert abs(bounds["lambda_pop"]["value"] - lam[7]) <= bounds["lambda_pop"]["residual_bound"] + 1e-9 * lam[7]


def test_route_cost_prices_the_edge_method_the_run_takes(edge_pair):
    """The operation count and the memory estimate price the edge method that runs: the LDLᵀ edge on the Krylov
    route (U formed, G₀ kept), the top-n Lanczos on the dense route and the streamed one."""
    cfg = RFConfig(d=8, p=512, n=32, n_emp=256)
    taus = study.TauGrid(0.1, 1e7, 41)
    dense = study.run(cfg, study.StudyOptions(taus=taus, method="dense", spectrum="edges", theory=False))
    assert "LDLᵀ" not in dense.diagnostics["spectrum"]["method"]
    assert "LDLᵀ" in edge_pair[1].diagnostics["spectrum"]["method"]
    cost = {m: study.route_cost(cfg, study.StudyOptions(taus=taus, method=m, spectrum="edges"), memory=10**12)
            for m in ("dense", "lanczos", "streamed")}
    p, n, d = 512.0, 32.0, 8.0
    m_t = min(p, study.EDGE_BLOCKS * (d + 1 + 32))
    ldl = 2 * p * p * m_t + 2 * p * m_t * m_t + 4 * 4 / 3 * m_t ** 3 + 4 * p * p * n + 2 * p * (2 * n) ** 2 \
        + p ** 3 / 3 + 2 * p * p * study.EDGE_INVERSE_COLUMNS
    assert cost["lanczos"]["spectrum"] == pytest.approx(ldl)
    m_e = min(p, study.EDGE_BLOCKS * (n + d + 32))            # blocks of n + d + max(32, (n + d)/16)
    assert cost["dense"]["spectrum"] == pytest.approx(2 * p * p * m_e + 2 * p * m_e * m_e + 4 * 4 / 3 * m_e ** 3)


def test_edges_take_the_top_n_when_the_shift_is_too_far(edge_pair, monkeypatch):
    """λ_mem comes from one LDLᵀ of U − σI (its window of eigenvalues above the shift recorded); when the shift
    is refused, the top-n block Lanczos gives the same edges and the diagnostics say why."""
    from rfdiff import lanczos
    dense, edges = edge_pair
    assert edges.diagnostics["spectrum"]["window"] >= 1 and "LDLᵀ" in edges.diagnostics["spectrum"]["method"]

    def refuse(*a, **k):
        raise ValueError("shift 0.1 is 300 eigenvalues from the 32-th largest")
    monkeypatch.setattr(lanczos, "ranked_eigenvalue", refuse)
    cfg = RFConfig(d=8, p=512, n=32, n_emp=256)
    r = study.run(cfg, study.StudyOptions(taus=study.TauGrid(0.1, 1e7, 41), method="lanczos", spectrum="edges",
                                          theory=False))
    assert "300 eigenvalues" in r.diagnostics["spectrum"]["ldl_fallback"]
    for k in ("lambda_mem", "lambda_mem_upper", "lambda_pop"):
        a, b = getattr(dense.simulation.timescales, k), getattr(r.simulation.timescales, k)
        assert abs(b - a) <= 1e-6 * abs(a), k


def test_curves_on_a_long_grid_are_evaluated_in_slices():
    """Slicing the τ grid (to bound the evaluation's memory) changes no value beyond rounding."""
    from rfdiff import dynamics, model
    pr = model.build_problem(RFConfig(d=8, p=64, n=16, n_emp=128))
    dyn = dynamics.from_problem(pr)
    taus = np.append(np.geomspace(0.1, 1e7, 301), np.inf)
    whole, sliced = dyn.curves(taus), study.curves_chunked(dyn, taus, chunk=64 * 7)
    for k in ("tau", "train_loss", "test_loss", "gen_gap", "score_error", "emp_distance"):
        np.testing.assert_allclose(getattr(sliced, k), getattr(whole, k), rtol=1e-13, atol=0)


@pytest.mark.parametrize("kind, why", [("slq", "cannot resolve"), ("none", "not computed")])
def test_unresolving_spectrum_leaves_the_spectral_rows_empty_with_a_reason(kind, why):
    """No quantity from a route that cannot resolve it: with SLQ (or no spectrum) the spectral rows are NaN and
    the reason is recorded; the curves' timescales are unchanged."""
    cfg = RFConfig(d=8, p=256, n=32, n_emp=256)
    taus = study.TauGrid(0.1, 1e6, 21)
    r = study.run(cfg, study.StudyOptions(taus=taus, method="lanczos", spectrum=kind,
                                          theory=False, slq_probes=4, slq_steps=20))
    ts = r.simulation.timescales
    assert all(math.isnan(getattr(ts, k)) for k in study.SPECTRAL_ROWS)
    assert math.isfinite(ts.tau_mem) and why in r.diagnostics["spectral_rows"]
    if kind == "none":
        assert r.simulation.spectrum is None
        assert study.route_cost(cfg, study.StudyOptions(taus=taus, method="lanczos", spectrum=kind))["spectrum"] == 0
        # U held as its upper row blocks here, dense for the exact spectrum: the same Krylov route to rounding
        ref = study.run(cfg, study.StudyOptions(taus=taus, method="lanczos", spectrum="exact", theory=False))
        assert r.diagnostics["U_storage"].startswith("upper") and ref.diagnostics["U_storage"].startswith("dense")
        for k in ("tau_mem", "tau_gen"):
            assert getattr(ts, k) == pytest.approx(getattr(ref.simulation.timescales, k), rel=1e-10), k
        for k in ("train_loss", "test_loss", "score_error"):
            np.testing.assert_allclose(getattr(r.simulation.curves, k), getattr(ref.simulation.curves, k), rtol=1e-9)
        half, full = (study.memory_estimate(1024, 64, 16, "lanczos", spectrum=s) for s in ("none", "exact"))
        assert full - half == 4 * 1024 * (1024 - study.ROW_BLOCK)


def test_theory_warnings():
    assert study.theory_warnings(RFConfig(d=16, p=64, n=32)) == ()
    assert any("below" in w for w in study.theory_warnings(RFConfig(d=4, p=64, n=32)))
    assert any("mixture" in w for w in study.theory_warnings(RFConfig(d=16, p=64, n=32, data=DataSpec("mixture"))))


@pytest.fixture(scope="module")
def small_run():
    cfg = RFConfig(d=8, p=128, n=32, n_emp=512)
    return study.run(cfg, study.StudyOptions(taus=study.TauGrid(0.1, 1e6, 25)))


def test_run_sides_share_grid_and_rules(small_run):
    """Simulation and theory on the same τ grid (the τ = ∞ point split off), timescales by the same thresholds."""
    r = small_run
    assert r.diagnostics["method"] == "dense" and r.warnings == ()
    for side in (r.simulation, r.theory, r.theory_d_inf):
        assert side.curves.tau.shape == (25,) and side.limit.tau.tolist() == [math.inf]
        assert side.timescales.thresholds == r.study.options.thresholds
        assert 0 < side.timescales.tau_gen < side.timescales.tau_mem
    assert r.prediction is not None and r.prediction.curves is None and r.prediction.d == 8
    assert set(r.timings) >= {"matrices", "dynamics", "spectrum", "curves", "theory"}


def test_run_ge_model_and_no_theory():
    cfg = RFConfig(d=8, p=64, n=16, n_emp=256)
    r = study.run(cfg, study.StudyOptions(taus=study.TauGrid(0.1, 1e5, 10), model="ge", theory=False))
    assert r.diagnostics["method"] == "ge" and r.theory is None and r.prediction is None
    assert r.simulation.curves.test_loss.shape == (10,)
    with pytest.raises(ValueError, match="model='ge'"):
        study.run(RFConfig(d=8, p=64, n=16, data=DataSpec("mixture")), study.StudyOptions(model="ge"))
    with pytest.raises(ValueError, match="^config"):
        study.run("not a config")


FLOAT64_SCRIPT = textwrap.dedent("""
    import json, jax, numpy as np
    assert not jax.config.jax_enable_x64, "the fresh interpreter starts in float32"
    from rfdiff import dynamics, lanczos, model, study
    cfg = model.RFConfig(d=8, p=64, n=16, n_emp=256)
    res = study.run(cfg, study.StudyOptions(taus=study.TauGrid(0.1, 1e5, 12)))
    dtypes = {}
    for name, side in (("simulation", res.simulation), ("theory", res.theory), ("theory_d_inf", res.theory_d_inf)):
        for k, v in side.curves.items():
            dtypes[f"{name}.{k}"] = str(np.asarray(v).dtype)
        dtypes[f"{name}.spectrum"] = str(side.spectrum.nodes.dtype)
    pr = model.build_problem(cfg)
    for label, dyn in (("dense", dynamics.from_problem(pr)),
                       ("krylov", lanczos.krylov_dynamics(pr.train.U, pr.train.V, cfg.t, pop=pr.population))):
        for k, v in dyn.curves(np.logspace(-1, 5, 7)).items():
            dtypes[f"{label}.{k}"] = str(np.asarray(v).dtype)
        dtypes[f"{label}.A"] = str(np.asarray(dyn.A(10.0)).dtype)
    for k in ("train.U", "train.V", "pop.U", "pop.V", "W", "X", "population.emp_cross"):
        obj = pr
        for part in k.split("."):
            obj = getattr(obj, part)
        dtypes["problem." + k] = str(np.asarray(obj).dtype)
    print("RESULT" + json.dumps({"dtypes": dtypes, "x64_after": bool(jax.config.jax_enable_x64),
                                 "default_dtype_after": str(jax.numpy.zeros(()).dtype)}))
""")


def test_run_is_float64_and_leaves_the_global_setting_alone():
    """In a fresh interpreter (global JAX setting: float32), study.run, the dense and Krylov dynamics and the
    problem's matrices are all float64, and ``jax_enable_x64`` is still False afterwards."""
    proc = subprocess.run([sys.executable, "-c", FLOAT64_SCRIPT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    not64 = {k: v for k, v in out["dtypes"].items() if v != "float64"}
    assert len(out["dtypes"]) > 20 and not not64, not64
    assert out["x64_after"] is False and out["default_dtype_after"] == "float32"


def test_subspace_data_gets_no_theory_column_and_says_why():
    """Subspace data once ran a 4.6 GB, 57 s theory at d = 8, p = 128 whose score error was 23x off, silently."""
    cfg = RFConfig(d=8, p=64, n=16, n_emp=128, data=DataSpec(kind="subspace", D=2))
    res = study.run(cfg, study.StudyOptions(taus=study.TauGrid(0.1, 1e5, 11)))
    assert res.theory is None and res.theory_d_inf is None and res.prediction is None
    assert any("subspace" in w for w in res.warnings)


def test_route_cost_counts_the_theorys_memory_of_the_tau_grid():
    """--n-tau 1000000 once passed a 0.61 GB estimate and the theory stage then took > 24 GB (killed)."""
    cfg = RFConfig(d=16, p=256, n=64)
    fine = study.route_cost(cfg, study.StudyOptions(taus=study.TauGrid(0.1, 1e7, study.N_TAU_MAX)))["bytes"]
    assert fine >= study.THEORY_BYTES_PER_TAU * study.N_TAU_MAX
    bare = study.route_cost(cfg, study.StudyOptions(taus=study.TauGrid(0.1, 1e7, study.N_TAU_MAX), theory=False))
    assert bare["bytes"] < fine


def test_the_route_is_sized_with_the_probed_mehler_order_where_the_budget_does_not_fit():
    """The Mehler factors are budgeted at order 12; where that does not fit, the order the plan will choose is probed
    on its sample rows (the plan's own) and the route sized with it. Where only dropping the spectrum would fit,
    the error says so."""
    from rfdiff import matrices
    from rfdiff.model import draw
    cfg = RFConfig(d=64, p=4096, n=1024)
    dr = draw(cfg)
    K = matrices.train_order(dr.W, dr.X, cfg.t)
    plan, _ = matrices.train_plan_and_V(dr.W[:512], dr.X, cfg.t)       # any p: the probe reads the plan's rows
    assert K < matrices.MAX_ORDER
    assert matrices.train_order(dr.W[:512], dr.X, cfg.t) == plan.order
    est = {k: study.memory_estimate(4096, 1024, 64, "lanczos", max_order=k, spectrum="none", n_tau=162)
           for k in (K, matrices.MAX_ORDER)}
    assert est[K] < est[matrices.MAX_ORDER]
    mem = (est[K] + est[matrices.MAX_ORDER]) // 2
    assert study.choose_method(cfg, "lanczos", mem, n_tau=162, spectrum="none") == "lanczos"
    # under auto too: the faster route is not passed over for the streamed one on the order-12 budget
    streamed = study.memory_estimate(4096, 1024, 64, "streamed", spectrum="none", n_tau=162)
    assert streamed < est[matrices.MAX_ORDER]
    mem = (streamed + est[matrices.MAX_ORDER]) // 2              # streamed fits the budget, lanczos only its order
    assert study.choose_method(cfg, "auto", mem, n_tau=162, spectrum="none") == "lanczos"
    opts = study.StudyOptions(taus=study.TauGrid(0.1, 1e7, 161), method="lanczos", spectrum="none", theory=False)
    assert study.route_cost(cfg, opts, memory=mem)["bytes"] == est[K]          # printed as it was sized
    edges = study.memory_estimate(4096, 1024, 64, "lanczos", max_order=K, spectrum="edges", n_tau=162)
    with pytest.raises(ValueError, match=r"^p=4096: .*without the spectrum \(spectrum='none'\)"):
        study.choose_method(cfg, "lanczos", (est[K] + edges) // 2, n_tau=162, spectrum="edges")
