# Aliases of `python tasks.py TARGET` (tasks.py works on any OS, with or without make).
# `make` alone lists the targets. Every target sets up .venv from requirements.lock first
# (again whenever the lock or pyproject.toml changes); nothing else is needed but Python >= 3.10.

PYTHON ?= python3
TARGETS := report test test-quick handin handin-check zip bench lint lock hooks clean venv

.DEFAULT_GOAL := help
.PHONY: help $(TARGETS)

help:  ## list the targets
	@$(PYTHON) tasks.py help

$(TARGETS):
	@$(PYTHON) tasks.py $@
