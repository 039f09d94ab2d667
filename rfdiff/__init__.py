"""rfdiff: the random-features score model of diffusion, its exact dynamics and its spectral theory.

The public API (docs/theory.md cites each piece):

* configuration and one unit of work — :class:`RFConfig`, :class:`DataSpec`, :class:`StudyOptions`,
  :class:`TauGrid`, :func:`run` (simulation and theory of one configuration → :class:`StudyResult`);
* typed results — :class:`Curves`, :class:`Spectrum`, :class:`Timescales`, :class:`Thresholds`,
  :class:`Prediction`, and :func:`save` / :func:`load` (JSON + NPZ);
* the pieces — :mod:`rfdiff.model` (draws, matrices of one problem), :mod:`rfdiff.matrices`,
  :mod:`rfdiff.dynamics`, :mod:`rfdiff.lanczos`, :mod:`rfdiff.theory` (:func:`predict`),
  :mod:`rfdiff.timescales`, :mod:`rfdiff.training`, :mod:`rfdiff.ridge`, :mod:`rfdiff.finite_m`,
  :mod:`rfdiff.classes`, :mod:`rfdiff.sampling`, :mod:`rfdiff.memorisation`, :mod:`rfdiff.fluctuations`,
  :mod:`rfdiff.stats`;
* sweeps — :func:`run_sweep` on any Dask client (:mod:`rfdiff.sweep`) through a :class:`Cache`
  (:mod:`rfdiff.cache`), and the studies'
  pipelines in :mod:`rfdiff.pipelines`.
"""
from . import (activations, cache, classes, data, diffusion, dynamics, features, finite_m, fluctuations, lanczos,  # noqa: F401
               matrices, memorisation, metrics, model, ridge, sampling, stats, study, sweep, theory, timescales,
               training)
from .activations import available_activations, get_activation, register_activation  # noqa: F401
from .dynamics import exact_dynamics  # noqa: F401
from .population import Population  # noqa: F401
from .features import init_W, rf_score  # noqa: F401
from .model import DataSpec, RFConfig, build_problem, draw  # noqa: F401
from .results import Curves, Prediction, Spectrum, Thresholds, Timescales, load, save  # noqa: F401
from .study import StudyOptions, StudyResult, TauGrid, run  # noqa: F401
from .cache import Cache  # noqa: F401
from .sweep import run_sweep  # noqa: F401
from .theory import predict  # noqa: F401

__version__ = "0.2.0"

__all__ = ["RFConfig", "DataSpec", "StudyOptions", "TauGrid", "StudyResult", "run", "build_problem", "draw",
           "exact_dynamics", "Population", "predict", "Curves", "Spectrum", "Timescales", "Thresholds",
           "Prediction", "save", "load",
           "Cache", "run_sweep", "init_W", "rf_score", "available_activations", "get_activation",
           "register_activation", "__version__"]
