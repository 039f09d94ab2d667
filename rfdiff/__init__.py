"""rfdiff: the random-features score model of diffusion, its exact dynamics and its spectral theory."""
from . import activations, data, diffusion, features, matrices, memorization, sampling  # noqa: F401
from .activations import available_activations, get_activation, register_activation  # noqa: F401
from .features import init_W, rf_score  # noqa: F401

__version__ = "0.1.0"
