"""The builders behind `python tasks.py report`, `handin`, `zip` and `handin-check`, and the
report's Jupyter export format (``report_exporter``)."""
