# Two entry points for a new machine (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
DEMO_PERIOD ?= 2026-10

.PHONY: demo test lint docs docs-gen install clean check-system

# WeasyPrint draws text with Pango: without it nothing renders. Said before anything installs.
check-system:
	@$(PYTHON) -c "import ctypes.util, sys; sys.exit(0 if ctypes.util.find_library('pango-1.0') and ctypes.util.find_library('pangoft2-1.0') else 1)" \
	  || { echo "reporter needs Pango (WeasyPrint draws text with it). On Debian or Ubuntu:"; \
	       echo "  sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0"; exit 1; }

# The demo installs reporter and what it runs with; the tests add the dev tools (.[dev]).
# PYTHONWARNINGS: setuptools prints a ten-line banner on every editable install (about folders
# named like the package), which says nothing about this project.
$(STAMP): pyproject.toml | check-system
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/reporter validate config/example.yaml
	$(BIN)/reporter run config/example.yaml --period $(DEMO_PERIOD) --no-send

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy reporter

# The documentation site, as CI builds it: any warning (a broken link, a page not in the nav) fails.
# (Not --quiet: mkdocs then drops the warnings, and --strict with them.)
docs: $(DEV_STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

# Regenerate what is generated from reporter/config/model.py and reporter/render/view.py
# (tests fail when any is stale).
docs-gen: $(DEV_STAMP)
	$(BIN)/python -m reporter.config.reference > docs/configuration.md
	$(BIN)/reporter schema > schema/reporter.schema.json
	$(BIN)/python -m reporter.render.view docs/templates.md

test: lint docs
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) output build dist site *.egg-info
