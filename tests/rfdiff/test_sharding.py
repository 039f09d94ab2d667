"""Sharded U over forced host devices equals the single-device construction."""
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    assert len(jax.devices()) == 4, jax.devices()
    from rfdiff import data, features, matrices, sharding
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    W = features.init_W(k1, 128, 16); X = data.isotropic(16).sample(k2, 24)
    ref = matrices.train_matrices(W, X, 0.2, tol=1e-8)  # same tolerance, hence same Mehler order
    sh = sharding.sharded_train_matrices(W, X, 0.2, sharding.row_mesh())
    assert len(sh.U.sharding.device_set) == 4
    shard_rows = {s.data.shape for s in sh.U.addressable_shards}
    assert shard_rows == {(32, 128)}, shard_rows
    U = np.asarray(sh.U)
    err = np.linalg.norm(U - ref.U) / np.linalg.norm(ref.U)
    print("ERR", err)
    assert err < 1e-13, err
""")


def test_sharded_U_matches_single_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    err = float(res.stdout.split("ERR")[1].split()[0])
    assert err < 1e-13
