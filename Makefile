# Everything a reader or contributor runs. Set-up happens on demand: the first `make serve` or
# `make test` creates .venv, installs the pinned packages and writes the Vega bundle.
PY      ?= python3
VENV    := .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
BUNDLE  := docs/assets/vendor/vega-bundle.js
CHROMIUM ?= /usr/bin/chromium
SCALE   ?= full
export NO_MKDOCS_2_WARNING := 1  # mkdocs-material prints an end-of-life banner on every build
TOOLS   := .tools
TOOLS_STAMP := $(TOOLS)/.installed
# Tools outside the venv (the code corpus is the venv's site-packages): mkdocs-jupyter for the notebook pages,
# nbclient and ipykernel to execute the notebooks; put on the path only of the commands that need them.
TOOLS_ENV := PYTHONPATH=$(CURDIR)/$(TOOLS) JUPYTER_PATH=$(CURDIR)/$(TOOLS)/share/jupyter
ARGS    := $(if $(FORCE),--force) $(if $(MODEL),--model $(MODEL)) $(if $(ONLY),--only $(ONLY)) --scale $(SCALE)

.PHONY: setup tools kernel figures check models serve site test bench browser clean

setup: $(STAMP) $(BUNDLE)

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

$(BUNDLE): $(STAMP)
	$(PYTHON) -m explorer vendor

tools: $(TOOLS_STAMP)  ## mkdocs-jupyter, jupytext, nbclient, ipykernel into .tools (pinned by tools-constraints.txt)

$(TOOLS_STAMP): tools-constraints.txt | $(STAMP)  # the venv only has to exist: its pip installs them
	rm -rf $(TOOLS)
	$(PYTHON) -m pip install --quiet --no-deps --target $(TOOLS) -r tools-constraints.txt
	touch $@

kernel: setup tools  ## register the Jupyter kernel the notebooks ask for: .venv's python, ipykernel from .tools
	$(TOOLS_ENV) $(PYTHON) -m ipykernel install --user --name inside-the-network --display-name "Inside the Network (.venv)" \
		--env PYTHONPATH $(CURDIR)/$(TOOLS)

browser:  # Debian's Chromium drives the browser tests (Playwright cannot download its own here)
	@test -x $(CHROMIUM) || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

figures: setup  ## recompute stale figures (FORCE=1, MODEL=name, ONLY="id ...", SCALE=smoke)
	$(PYTHON) -m explorer figures $(ARGS)

check: setup  ## list published figures that are stale against their producers (SCALE=smoke: the tests' committed ones)
	$(PYTHON) -m explorer figures --check --scale $(SCALE)

models: setup  ## retrain a long run into models/NAME/ (NAME=...; without NAME: list them and their state)
	$(PYTHON) -m explorer models $(NAME)

serve: figures tools  ## bring figures up to date and serve the site on http://127.0.0.1:8000
	$(TOOLS_ENV) $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000

site: figures tools  ## build the static site into site/
	$(TOOLS_ENV) $(VENV)/bin/mkdocs build --strict

test: setup tools browser  ## the whole test suite (what CI runs)
	$(PYTHON) -m pytest -q

bench: setup tools browser  ## print performance numbers (not asserted)
	$(TOOLS_ENV) $(PYTHON) -m explorer bench

clean:
	rm -rf site .pytest_cache
