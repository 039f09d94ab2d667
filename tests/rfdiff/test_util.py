"""Bad input gets a one-line error naming the parameter before any computation (property-based, Hypothesis)."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfdiff import dynamics, matrices, results, study
from rfdiff._util import check_array, check_symmetric
from rfdiff.model import DataSpec, RFConfig

bad_int = st.one_of(st.integers(max_value=0), st.floats(allow_nan=True), st.booleans(), st.text(max_size=3),
                    st.none())
bad_pos = st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.just(math.inf), st.text(max_size=3), st.none())
fast = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(name=st.sampled_from(["d", "p", "n", "n_emp"]), value=bad_int)
def test_rfconfig_rejects_bad_sizes(name, value):
    with pytest.raises(ValueError, match=name):
        RFConfig(**{name: value})


@fast
@given(name=st.sampled_from(["t", "tol"]), value=bad_pos)
def test_rfconfig_rejects_bad_positives(name, value):
    with pytest.raises(ValueError, match=name):
        RFConfig(**{name: value})


@fast
@given(kind=st.text(min_size=1, max_size=8).filter(lambda s: s not in ("isotropic", "spectrum", "power_law",
                                                                         "mixture", "subspace")))
def test_dataspec_rejects_unknown_kinds(kind):
    with pytest.raises(ValueError, match="data kind"):
        DataSpec(kind=kind)


@fast
@given(tau_min=st.floats(allow_nan=True, allow_infinity=True), tau_max=st.floats(allow_nan=True, allow_infinity=True),
       n_tau=st.integers(-5, 300))
def test_tau_grid_is_valid_or_refused_by_name(tau_min, tau_max, n_tau):
    try:
        g = study.TauGrid(tau_min, tau_max, n_tau)
    except ValueError as err:
        assert str(err).split()[0] in ("tau_min", "tau_max", "n_tau")
    else:
        v = g.values()
        assert np.all(np.isfinite(v)) and np.all(np.diff(v) > 0)


@fast
@given(gen=st.floats(allow_nan=True), mem=st.floats(allow_nan=True), ab=st.floats(allow_nan=True))
def test_thresholds_are_valid_or_refused_by_name(gen, mem, ab):
    try:
        results.Thresholds(gen, mem, ab)
    except ValueError as err:
        assert str(err).split()[0] in ("gen_frac", "mem_frac", "mem_abs")


@fast
@given(eta=st.floats(allow_nan=True), method=st.text(max_size=6), lt=st.floats(allow_nan=True))
def test_study_options_are_valid_or_refused_by_name(eta, method, lt):
    try:
        study.StudyOptions(eta=eta, method=method, lanczos_tol=lt)
    except ValueError as err:
        assert str(err).split()[0] in ("eta", "method", "lanczos_tol")


arrays = st.sampled_from([np.zeros((0, 3)), np.full((3, 3), np.nan), np.ones((3, 3)) * (1 + 1j), np.ones(3),
                          np.ones((3, 4)), np.array([["a"]]), np.triu(np.ones((3, 3)))])


@fast
@given(M=arrays)
def test_matrix_arguments_refused_by_name(M):
    with pytest.raises(ValueError, match="^U "):
        check_symmetric("U", M)
    with pytest.raises(ValueError, match="U"):
        dynamics.exact_dynamics(M, np.ones((3, 2)), 0.1)


@fast
@given(X=st.sampled_from([np.zeros((0, 4)), np.full((2, 4), np.inf), np.ones((2, 4)) + 0j, np.ones((2, 3)),
                          np.ones(4)]))
def test_training_set_refused_by_name(X):
    with pytest.raises(ValueError, match="X"):
        matrices.train_matrices(np.ones((8, 4)), X, 0.1)


def test_check_array_returns_float64():
    a = check_array("A", np.arange(6, dtype=np.int32).reshape(2, 3))
    assert a.dtype == np.float64 and a.shape == (2, 3)


# ---------------------------------------------------------------- the command line (in-process: the rfdiff_cli package)

FLAG_VALUES = {
    "--p": st.sampled_from(["0", "-3", "abc", "1.5"]), "--n": st.sampled_from(["0", "-1", "x"]),
    "--d": st.sampled_from(["0", "-2"]), "--t": st.sampled_from(["0", "-1", "nan", "inf"]),
    "--tau-min": st.sampled_from(["0", "-1", "nan"]), "--tau-max": st.sampled_from(["inf", "nan", "0.001"]),
    "--n-tau": st.sampled_from(["1", "0", "-4"]), "--eta": st.sampled_from(["0", "-1", "nan", "inf"]),
    "--gen-frac": st.sampled_from(["0", "-1", "nan"]), "--mem-frac": st.sampled_from(["0", "1", "2", "-0.5"]),
    "--mem-abs": st.sampled_from(["0", "-1", "inf"]), "--tol": st.sampled_from(["0", "-1e-8"]),
    "--lanczos-tol": st.sampled_from(["0", "-1"]), "--lanczos-steps": st.sampled_from(["0", "-1"]),
    "--method": st.sampled_from(["eigh", "x"]), "--spectrum": st.sampled_from(["all"]),
    "--activation": st.sampled_from(["softsign", "relu"]), "--data": st.sampled_from(["cubes", ""]),
    "--sigma-x": st.sampled_from(["0", "-1", "nan"]), "--seed": st.sampled_from(["-1", "x"]),
    "--slq-probes": st.sampled_from(["0"]), "--name": st.sampled_from(["../x", "a/b", ".."]),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_main_job_bad_flags_one_line_naming_the_flag_no_files(tmp_path, capsys, data):
    from rfdiff_cli import rf_timescales
    flag = data.draw(st.sampled_from(sorted(FLAG_VALUES)))
    value = data.draw(FLAG_VALUES[flag])
    out = tmp_path / "out"
    capsys.readouterr()
    try:
        rc = rf_timescales.main(["--p", "64", "--n", "8", "--d", "8", "--no-progress", "--out", str(out),
                                 f"{flag}={value}"])
    except SystemExit as exc:           # argparse's own type errors (one line: common.Parser)
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert flag in err[0], (flag, value, err)
    assert not out.exists() or not any(out.iterdir())


def test_main_job_refuses_to_overwrite_and_an_output_file(tmp_path, capsys):
    from rfdiff_cli import rf_timescales
    f = tmp_path / "file"
    f.write_text("x")
    assert rf_timescales.main(["--out", str(f), "--no-progress"]) == 2
    assert "--out" in capsys.readouterr().err
    (tmp_path / "r.json").write_text("{}")
    assert rf_timescales.main(["--out", str(tmp_path), "--name", "r", "--no-progress"]) == 2
    msg = capsys.readouterr().err
    assert "--overwrite" in msg and "r.json" in msg and (tmp_path / "r.json").read_text() == "{}"
