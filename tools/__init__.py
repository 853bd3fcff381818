"""The tools behind `python tasks.py`: a module per job (see README.md, Layout)."""
