# make test | make report | make bench | make lint | make zip | make clean
# Every target sets up .venv from requirements.txt first (when missing or stale).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BUILD  := build

.PHONY: test report bench lint zip clean venv

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

test: venv
	$(PY) -m pytest -q

report: venv
	$(PY) tools/build_report.py --out $(BUILD)

bench: venv
	$(PY) benchmarks/bench_training.py

lint: venv
	$(PY) -m ruff check .

zip: venv
	$(PY) tools/make_zip.py --out $(BUILD)

clean:
	rm -rf $(BUILD) .pytest_cache .ruff_cache .hypothesis
