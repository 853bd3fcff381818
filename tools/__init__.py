"""The builders behind `make report`, `make handin`, `make zip` and `make handin-check`, and the
report's Jupyter export format (``report_exporter``)."""
