# `make` alone lists the targets. Every target sets up .venv from requirements.lock first
# (again whenever the lock changes); nothing else is needed but Python >= 3.10.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BUILD  := build

.DEFAULT_GOAL := help
.PHONY: help test test-quick report handin zip bench lint lock hooks clean venv

help:  ## list the targets
	@echo "make report      build the report: build/assignment1.pdf (+ .html, figures, metrics.json)"
	@echo "make test        run the whole test suite (gradient checks, data, training, report)"
	@echo "make test-quick  the quick loop while editing: every test not marked slow"
	@echo "make handin      build/handin/assignment_code.zip and assignment1.pdf, side by side"
	@echo "make zip         the full source archive: build/assignment1-source.zip"
	@echo "make bench       speed and memory benchmark (ratios measured side by side)"
	@echo "make lint        ruff"
	@echo "make lock        regenerate requirements.lock from requirements.txt (pip-tools)"
	@echo "make hooks       strip notebook outputs on commit (nbstripout as a git filter)"
	@echo "make clean       remove build/ and tool caches"

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@touch $@

test: venv
	$(PY) -m pytest -q

test-quick: venv
	$(PY) -m pytest -q -m "not slow"

report: venv
	$(PY) tools/build_report.py --out $(BUILD)

handin: venv
	$(PY) tools/make_handin.py --build $(BUILD)

zip: venv
	$(PY) tools/make_zip.py --out $(BUILD)

bench: venv
	$(PY) benchmarks/bench_training.py

lint: venv
	$(PY) -m ruff check .

lock: venv
	$(PY) -m pip install --quiet --disable-pip-version-check pip-tools
	$(PY) -m piptools compile --quiet --strip-extras --no-header --no-emit-index-url \
		--no-emit-find-links \
		--output-file requirements.lock requirements.txt

hooks: venv
	$(VENV)/bin/nbstripout --install --attributes .gitattributes
	@echo "notebook outputs are now stripped from what you commit (the file on disk keeps them)"

clean:
	rm -rf $(BUILD) .pytest_cache .ruff_cache .hypothesis
