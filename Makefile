# kbcoach: `make run` serves on http://127.0.0.1:5000, `make test` runs everything.
PYTHON ?= python3
PORT ?= 5000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-deps run test test-fast lint format bench clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: install
	$(BIN)/kbcoach serve --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

system-deps:
	.ci/system-deps

test: install system-deps lint
	$(BIN)/python -m pytest

# the library tests alone: no browser, no servers, seconds not minutes
test-fast: install
	$(BIN)/python -m pytest -m "not browser and not slow" -x -q

bench: install
	$(BIN)/python bench/search.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
