# Two commands matter: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV ?= .venv
PEERS_VENV ?= .venv-peers
BIN = $(VENV)/bin
PG_BIN ?= /usr/lib/postgresql/15/bin

.PHONY: run test catalogs translations bench install install-test peers postgres-server browser lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/pybabel -q compile -d fedsph/locale -D messages
	touch $@

# Interface translations: the .po files are the source, the .mo files are built (and ignored by git).
CATALOGS = $(patsubst %.po,%.mo,$(wildcard fedsph/locale/*/LC_MESSAGES/messages.po))

fedsph/locale/%/LC_MESSAGES/messages.mo: fedsph/locale/%/LC_MESSAGES/messages.po | $(VENV)/.installed
	$(BIN)/pybabel -q compile -l $* -i $< -o $@

catalogs: $(CATALOGS)

# Re-extracts the strings of templates/ and fedsph/ and updates every language's .po file.
translations: $(VENV)/.installed
	$(BIN)/python -m fedsph.i18n_update

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: $(VENV)/.installed catalogs
	$(BIN)/fedsph migrate
	$(BIN)/fedsph bootstrap
	$(BIN)/fedsph serve

# Real fediverse software from PyPI, in its own environment: its pins differ from ours, and
# the tests run it as separate processes, as it would run in the wild.
$(PEERS_VENV)/.installed: tests/peers-requirements.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet -r tests/peers-requirements.txt
	touch $@

peers: $(PEERS_VENV)/.installed

# The PostgreSQL tests start a throwaway cluster from these binaries (Debian's postgresql-15).
postgres-server:
	@test -x $(PG_BIN)/initdb || (apt-get update -qq && apt-get install -y -qq postgresql-15)

# The browser tests drive Debian's chromium through Playwright; no test tool downloads a browser.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

test: $(VENV)/.installed-test catalogs peers postgres-server browser
	FEDSPH_PEERS_PYTHON=$(CURDIR)/$(PEERS_VENV)/bin/python $(BIN)/python -m pytest $(PYTEST_ARGS)

# wrk (Debian's package) is the load generator when present; without it the benchmarks fall back
# to an aiohttp client, which caps the baseline and flatters the ratios.
bench: $(VENV)/.installed-test
	@command -v wrk >/dev/null || apt-get install -y -qq wrk || echo "wrk not installed: using the aiohttp load generator"
	$(BIN)/python -m bench

lint: $(VENV)/.installed-test
	$(BIN)/pip install --quiet ruff
	$(BIN)/ruff check fedsph tests bench

clean:
	rm -rf $(VENV) $(PEERS_VENV) .pytest_cache
