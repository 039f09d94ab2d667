"""rfdiff._util.stream_key: one PRNG helper, named streams of one seed (docs/theory.md §1.4)."""
import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from rfdiff._util import stream_key


def _bits(key):
    return tuple(np.asarray(jax.random.key_data(key) if hasattr(jax.random, "key_data") else key).ravel().tolist())


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**63 - 1), j=st.integers(0, 2**32 - 1))
def test_named_streams_are_folds_of_the_seed_and_distinct(seed, j):
    with jax.enable_x64(True):
        root = jax.random.PRNGKey(seed)
    a, b = stream_key(seed, "training"), stream_key(seed, "fluctuations", j)
    assert _bits(stream_key(seed)) == _bits(root)
    assert _bits(b) == _bits(jax.random.fold_in(stream_key(seed, "fluctuations"), j))
    assert len({_bits(a), _bits(b), _bits(root)}) == 3
    assert _bits(stream_key(seed, "training")) == _bits(a)          # deterministic


def test_a_stream_is_never_another_seeds_root():
    """The old ``PRNGKey(seed + 1)`` made seed s's second stream equal to seed s + 1's root."""
    roots = {_bits(stream_key(s)) for s in range(50)}
    streams = {_bits(stream_key(s, "slq")) for s in range(50)} | {_bits(stream_key(s, "x", 1)) for s in range(50)}
    assert not roots & streams


@pytest.mark.parametrize("seed", [-1, True, 2**63, 1.5, "3"])
def test_bad_seeds_refused_by_name(seed):
    with pytest.raises(ValueError, match="^seed must be"):
        stream_key(seed, "a")


@pytest.mark.parametrize("name", [-1, 2**32, 1.0, None])
def test_bad_stream_names_refused(name):
    with pytest.raises(ValueError, match="^stream names"):
        stream_key(0, name)
