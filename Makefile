# Two entry points (see README): `make run` and `make test`. Both set up .venv on first use.
# `make test` restarts the local PostgreSQL cluster once (the fault test
# tests/test_faults.py::test_postgres_restart_under_load_loses_and_doubles_nothing); skip it with
#   make test PYTEST_ARGS='-k "not postgres_restart"'
# It writes the reliability report to build/; `make docs` refreshes docs/reliability.md on purpose.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
REPORT := build/reliability.md

.PHONY: run test lint socket install docs i18n

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	set -a; [ ! -f .env ] || . ./.env; set +a; exec $(BIN)/prereg-bot serve

socket: $(STAMP)
	set -a; [ ! -f .env ] || . ./.env; set +a; exec $(BIN)/prereg-bot socket

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) lint
	$(BIN)/python -m pytest --reliability-report=$(REPORT) $(PYTEST_ARGS)

docs: $(STAMP)
	$(BIN)/python -m pytest --reliability-report=docs/reliability.md $(PYTEST_ARGS)

# New or changed texts into the catalogs (bot/locale); then translate each empty msgstr.
i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _ -k N_ -k ngettext:1,2 --no-location \
		--omit-header -o bot/locale/messages.pot .
	$(BIN)/pybabel update -i bot/locale/messages.pot -d bot/locale -l zh \
		--no-fuzzy-matching --width 100
