"""Pipelines of the studies: unit configurations, the unit functions that sweeps run, and the summaries.

Each module holds one study's computations (never its printing or plotting): frozen-dataclass
unit configurations, module-level unit functions ``fn(unit) -> typed result`` that
:func:`rfdiff.sweep.run_sweep` can run and cache, and functions that turn a list of unit results
into the study's key numbers.
"""
