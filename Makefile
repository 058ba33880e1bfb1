# Two entry points (see README): `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint socket install

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
	$(BIN)/python -m pytest --reliability-report=docs/reliability.md
