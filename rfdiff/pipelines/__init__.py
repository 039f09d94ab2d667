"""Pipelines of the studies: unit configurations, the unit functions that sweeps run, and the summaries.

Each module holds one study's computations (never its printing or plotting): frozen-dataclass
unit configurations and presets, module-level unit functions ``fn(unit) -> typed result`` that
:func:`rfdiff.sweep.run_sweep` can run and cache, and functions that turn the unit results into
the study's typed, frozen summary (``paper``: ``plan(figure, preset) -> {Label: unit}`` computed
once, ``summarize`` reading the results by label). Inputs are checked by one validator set
(``_checks``); every PRNG stream is a named fold of a seed (:func:`rfdiff._util.stream_key`).
Labels, key-number tables and verdicts for a reader live in ``rfdiff_analysis``.
"""
