import jax
import pytest

# Tests run in float64 with strict rank promotion (float64 for theory and exact dynamics).
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "allow")


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)
