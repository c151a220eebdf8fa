# vlmcal: two commands build everything from a fresh clone.
#   make test   set up .venv, system data and notebooks, then run pytest (every test)
#   make test-fast   the same set-up, then the tests that train no model and run no notebook
#   make book   the same set-up, then `jb build -W book/`, which first executes the pages that are missing or stale
# Both are idempotent: a second run redoes only what changed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# The torch/torchvision pair that installs offline on the project's machines (x86_64,
# Python 3.11). Elsewhere override it, e.g. `make book TORCH_PINS="torch torchvision"`.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
MATHJAX_VERSION ?= 3.2.2
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export PYTHONHASHSEED ?= 0
# Trained stand-ins and extracted features live in the clone (git ignores .cache/), so a
# fresh clone starts cold; point it elsewhere to share one cache between clones.
export VLMCAL_CACHE_DIR ?= $(CURDIR)/.cache/vlmcal

INSTALLED := $(VENV)/.installed
MATHJAX := book/_vendor/mathjax/tex-chtml.js
NB_SOURCES := $(sort $(wildcard notebooks/*.py))
NB_IPYNB := $(NB_SOURCES:.py=.ipynb)

.PHONY: setup test test-fast book profile system-data bytecode clean help
help:
	@echo "make test   - set up, then run the test suite"
	@echo "make test-fast - set up, then the fast tests (pytest -m 'not slow')"
	@echo "make book   - set up, then jb build book/: the stale pages are executed, the site is built in book/_build/html"
	@echo "make profile PROFILE=book/profiles/tiny.yml OUT=tiny-book - set up, then the whole book with a profile, in OUT"

setup: $(INSTALLED) system-data $(MATHJAX) $(NB_IPYNB) bytecode

# Compile vlmcal's modules once, so that each notebook's kernel does not (where
# PYTHONDONTWRITEBYTECODE is set, Python would otherwise compile them on every import).
bytecode: | $(INSTALLED)
	@$(PY) -m compileall -q vlmcal

$(INSTALLED): pyproject.toml
	@echo "== set-up: virtual environment $(VENV)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e '.[book,test]'
	touch $@

# Fashion-MNIST and WordNet come from Debian packages; installed here when we are root.
system-data:
	@if [ -d /usr/share/datasets/fashion-mnist ] && [ -d /usr/share/wordnet ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "== set-up: apt-get install dataset-fashion-mnist wordnet-base"; \
	  apt-get install -y -q dataset-fashion-mnist wordnet-base >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist wordnet-base >/dev/null; }; \
	else echo "note: Fashion-MNIST/WordNet are not installed system-wide; vlmcal will look in VLMCAL_DATA_DIR (see README)"; fi

# MathJax is served from the built site itself, so math renders offline.
$(MATHJAX):
	@echo "== set-up: MathJax $(MATHJAX_VERSION) from the npm registry"
	rm -rf book/_vendor/mathjax && mkdir -p book/_vendor
	tmp=$$(mktemp -d) && (cd $$tmp && npm pack -q mathjax@$(MATHJAX_VERSION) >/dev/null) && \
	  tar xzf $$tmp/mathjax-$(MATHJAX_VERSION).tgz -C $$tmp && mv $$tmp/package/es5 book/_vendor/mathjax && rm -rf $$tmp

# Notebook sources are jupytext percent-format .py files; papermill needs .ipynb.
notebooks/%.ipynb: notebooks/%.py | $(INSTALLED)
	$(BIN)/jupytext --quiet --to ipynb --output $@ $<

test: setup
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not slow"

# `jb build book/` is the whole build: the book's extension (book/_ext/execute_pages.py) first runs
# every page that is missing or older than its source or vlmcal's files, through the book's runner.
# A jb build killed midway may leave Sphinx's caches half-written: the marker, there only while jb
# build runs (or after it was killed by a signal), makes the next build start them afresh.
UNFINISHED := book/_build/.jb-build-unfinished
book: setup | system-data
	@echo "== jb build -W book/ (the stale pages first)"
	rm -rf book/_build/html
	if [ -e $(UNFINISHED) ]; then rm -rf book/_build/.doctrees book/_build/jupyter_execute; fi
	mkdir -p book/_build && touch $(UNFINISHED)
	$(BIN)/jb build -W -n --keep-going book/ || { s=$$?; [ $$s -gt 128 ] || rm -f $(UNFINISHED); rm -rf book/_build/html; echo "book build FAILED: no site was left behind"; exit 1; }
	rm -f $(UNFINISHED)
	@echo "== site: book/_build/html/index.html"

# The whole book with a profile of page parameters, into a folder (and site) of its own.
PROFILE ?= book/profiles/tiny.yml
OUT ?= $(basename $(notdir $(PROFILE)))-book
profile: setup | system-data
	$(PY) -m vlmcal.book.run --profile $(PROFILE) --out $(OUT)

clean:
	rm -rf book/_build book/notebooks book/_failed book/_verdicts book/api notebooks/*.ipynb
