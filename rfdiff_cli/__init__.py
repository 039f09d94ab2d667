"""rfdiff_cli: the ``rfdiff`` command, one module per study (installed as a package; argparse, printing, plotting)."""
