# Two commands matter: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV ?= .venv
PEERS_VENV ?= .venv-peers
BIN = $(VENV)/bin
PG_BIN ?= /usr/lib/postgresql/15/bin

.PHONY: run test test-sqlite test-postgresql catalogs translations bench install install-test peers postgres-server browser tls-proxies lint lock clean

# Every install takes its versions from the locks (pip-tools' pip-compile writes them, `make lock`
# refreshes them): a dependency's new release cannot change what `make run`, `make test`, CI or the
# Dockerfile install until someone refreshes the lock and the tests pass with it.
LOCK = requirements.lock
PEERS_LOCK = tests/peers.lock
PIP_TOOLS = pip-tools==7.6.2

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The editable install's build (setup.py) also compiles the catalogs, next to their .po files.
$(VENV)/.installed: pyproject.toml setup.py $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet -c $(LOCK) -e .
	touch $@

# Interface translations: the .po files are the source, the .mo files are built (and ignored by
# git). Every install compiles them; this target is for translators, after editing a .po file.
CATALOGS = $(patsubst %.po,%.mo,$(wildcard fedsph/locale/*/LC_MESSAGES/messages.po))

fedsph/locale/%/LC_MESSAGES/messages.mo: fedsph/locale/%/LC_MESSAGES/messages.po | $(VENV)/.installed
	$(BIN)/pybabel -q compile -l $* -i $< -o $@

catalogs: $(CATALOGS)

# Re-extracts the strings of templates/ and fedsph/ and updates every language's .po file.
translations: $(VENV)/.installed
	$(BIN)/python -m fedsph.i18n_update

$(VENV)/.installed-test: pyproject.toml $(LOCK) $(VENV)/.installed
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: $(VENV)/.installed catalogs
	$(BIN)/fedsph migrate
	$(BIN)/fedsph bootstrap
	$(BIN)/fedsph serve

# Real fediverse software from PyPI, in its own environment: its pins differ from ours, and
# the tests run it as separate processes, as it would run in the wild.
$(PEERS_VENV)/.installed: $(PEERS_LOCK)
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet -r $(PEERS_LOCK)
	touch $@

peers: $(PEERS_VENV)/.installed

# The PostgreSQL tests start a throwaway cluster from these binaries (Debian's postgresql-15).
postgres-server:
	@test -x $(PG_BIN)/initdb || (apt-get update -qq && apt-get install -y -qq postgresql-15)

# The browser tests drive Debian's chromium through Playwright; no test tool downloads a browser.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# The deployment tests (tests/test_deploy_caddy.py, tests/test_deploy_files.py) run the shipped
# deploy/ files with Debian's caddy and nginx, curl, and systemd's systemd-analyze (the systemd
# package starts nothing in a container). The tests start their own proxies, on port 443 of
# loopback addresses of their own, so Debian's services are kept from starting while installing
# (a policy-rc.d saying no, unless the machine has one) and, where systemd runs, the proxies
# installed here are stopped and disabled: their default sites would take port 80 (nginx's
# postinst fails when it cannot).
# The policy-rc.d this target makes goes again however the install ends: on Ctrl-C too (the
# shell exits on INT/TERM, which runs the EXIT trap). POLICY_RC_D is for tests/test_deploy_files.py,
# which must not touch the machine's own.
POLICY_RC_D = /usr/sbin/policy-rc.d

tls-proxies:
	@missing=; for tool in caddy nginx curl systemd-analyze; do \
		command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	[ -z "$$missing" ] && exit 0; \
	new=; for tool in caddy nginx; do command -v $$tool >/dev/null || new="$$new $$tool"; done; \
	blocked=; if [ ! -e $(POLICY_RC_D) ]; then \
		trap 'rm -f $(POLICY_RC_D)' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
		printf '#!/bin/sh\nexit 101\n' >$(POLICY_RC_D) && chmod 755 $(POLICY_RC_D) && blocked=1; fi; \
	apt-get update -qq && apt-get install -y -qq caddy nginx curl systemd; status=$$?; \
	[ -z "$$blocked" ] || { rm -f $(POLICY_RC_D); trap - EXIT INT TERM; }; \
	[ $$status = 0 ] || exit $$status; \
	if [ -n "$$new" ] && [ -d /run/systemd/system ]; then systemctl disable --now $$new || true; fi; \
	for tool in caddy nginx curl systemd-analyze; do \
		command -v $$tool >/dev/null || { echo "tls-proxies: $$tool is still missing" >&2; exit 1; }; done

# The whole suite runs twice, once per database engine (FEDSPH_TEST_DATABASE, see README's
# Development section), each over TEST_WORKERS pytest-xdist processes: most tests wait on sockets
# and subprocesses, so 4 workers beat 2 on two cores. --dist loadfile keeps a module on one worker:
# the end-to-end modules share their servers between tests, in order. Both runs always run; either
# failing fails.
# lint-imports checks the layering contract of pyproject.toml ([tool.importlinter]) first: an
# upward import or an import cycle fails in a second, before the suite.
TEST_WORKERS ?= 4
PYTEST = FEDSPH_PEERS_PYTHON=$(CURDIR)/$(PEERS_VENV)/bin/python $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
TEST_DEPS = $(VENV)/.installed-test catalogs peers postgres-server browser tls-proxies

test: $(TEST_DEPS)
	$(BIN)/lint-imports
	status=0; \
	FEDSPH_TEST_DATABASE=sqlite $(PYTEST) || status=1; \
	FEDSPH_TEST_DATABASE=postgresql $(PYTEST) || status=1; \
	exit $$status

test-sqlite: $(TEST_DEPS)
	FEDSPH_TEST_DATABASE=sqlite $(PYTEST)

test-postgresql: $(TEST_DEPS)
	FEDSPH_TEST_DATABASE=postgresql $(PYTEST)

# wrk (Debian's package) is the load generator when present; without it the benchmarks fall back
# to an aiohttp client, which caps the baseline and flatters the ratios.
bench: $(VENV)/.installed-test
	@command -v wrk >/dev/null || apt-get install -y -qq wrk || echo "wrk not installed: using the aiohttp load generator"
	$(BIN)/python -m bench

lint: $(VENV)/.installed-test
	$(BIN)/pip install --quiet ruff==0.17.5
	$(BIN)/ruff check fedsph tests bench
	$(BIN)/lint-imports

# Re-resolves both locks to the newest versions pyproject.toml and tests/peers-requirements.txt
# allow. Run `make test` afterwards and commit the locks with whatever the new versions needed.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet $(PIP_TOOLS)
	$(BIN)/pip-compile --quiet --upgrade --extra test --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links --no-emit-trusted-host -o $(LOCK) pyproject.toml
	$(BIN)/pip-compile --quiet --upgrade --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		-o $(PEERS_LOCK) tests/peers-requirements.txt

clean:
	rm -rf $(VENV) $(PEERS_VENV) .pytest_cache
