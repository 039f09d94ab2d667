#!/usr/bin/env python
"""The main job as a script: ``python experiments/rf_timescales.py --p 4096 --n 512`` is ``rfdiff run --p 4096 --n 512``.

Every flag is the command's (``--help``); the work is in :mod:`rfdiff_cli.rf_timescales`.
"""
import sys

from rfdiff_cli import rf_timescales

if __name__ == "__main__":
    sys.exit(rf_timescales.main())
