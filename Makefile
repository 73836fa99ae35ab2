# Pijnwacht — every developer task is a make target. `make run` and `make test` work on a
# fresh machine: they install what they need (Python packages into .venv, Debian's chromium
# for the browser tests, axe-core from npm).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install install-test run test lint format bench browser-deps clean lock screenshots screenshots-small

# Quiet installs: the build backend's warnings would bury the demo login `make run` prints.
PIP    := PYTHONWARNINGS=ignore $(BIN)/pip install -q --disable-pip-version-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(PIP) -e .
	@touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[test]'
	@touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime
install-test: $(VENV)/.test

## Serve the PWA and the clinic on http://127.0.0.1:8000 (first run: demo clinic and login)
run: $(VENV)/.runtime
	@$(BIN)/pijnwacht serve --demo-if-empty

## Browser-test dependencies: Debian's Chromium with its Dutch locale (date and time fields as on a
## Dutch phone), optipng (the README's screenshots stay losslessly small), the pinned axe-core,
## FHIR.js (FHIR validator) and es-module-lexer (the PWA's import graph)
browser-deps: node_modules/axe-core/axe.min.js node_modules/fhir/package.json node_modules/es-module-lexer/package.json
	@{ command -v chromium >/dev/null 2>&1 && [ -e /usr/lib/chromium/locales/nl.pak ] && command -v optipng >/dev/null 2>&1; } || \
	  { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-l10n fonts-dejavu-core optipng; }

node_modules/axe-core/axe.min.js node_modules/fhir/package.json node_modules/es-module-lexer/package.json: package.json
	npm install --no-audit --no-fund --silent
	@touch $@

## Every test: lint, unit, API, fault, security and browser suites
test: $(VENV)/.test browser-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Benchmarks (tests/bench): prints a table and writes bench-results/bench.json
bench: $(VENV)/.test browser-deps
	@command -v wrk >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk; }
	$(BIN)/python -m tests.bench

## Refresh the README's phone screenshots (docs/screenshots/) from the browser tests
screenshots: $(VENV)/.test browser-deps
	PIJNWACHT_SCREENSHOTS_DIR=docs/screenshots $(BIN)/pytest -q tests/browser
	@$(MAKE) --no-print-directory screenshots-small

## Recompress the README's screenshots losslessly (Debian's optipng: same pixels, ~20 % smaller)
screenshots-small: browser-deps
	optipng -quiet -o2 -strip all docs/screenshots/*.png

## Record checksums of new questionnaire definitions (a published version never changes)
lock: $(VENV)/.runtime
	$(BIN)/python -m backend.diary.questionnaires lock

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache
