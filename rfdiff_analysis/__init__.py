"""rfdiff_analysis: turning results into verdicts, tables, reports and figures ."""
