"""rfdiff_cli: the ``rfdiff`` command, one module per study (installed from ``experiments/``; argparse, printing, plotting)."""
